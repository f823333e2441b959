/**
 * Codecs: frames to WebSocket message data and back, one per subprotocol.
 *
 * Pure code, so that the shared vectors can check both directions byte for byte in Node.
 */

import { decode as unpack, encode as pack } from "@msgpack/msgpack";

export const JSON_SUBPROTOCOL = "rt.v1.json";
export const MSGPACK_SUBPROTOCOL = "rt.v1.msgpack";

/** A decoded frame before it is narrowed: a map whose `type` is a string. */
export type WireFrame = { type: string } & Record<string, unknown>;

export type WireData = string | Uint8Array;

export interface Codec {
  /** The WebSocket subprotocol that selects this codec. */
  readonly name: string;
  /** True when frames travel as binary messages. */
  readonly binary: boolean;
  encode(frame: object): WireData;
  /** Decodes one message; throws {@link FrameError} when it is not a frame. */
  decode(data: WireData | ArrayBuffer): WireFrame;
}

export class FrameError extends Error {
  override readonly name = "FrameError";
}

function asWireFrame(value: unknown): WireFrame {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FrameError("a frame must be a map");
  }
  const map = value as Record<string, unknown>;
  if (typeof map["type"] !== "string") throw new FrameError("a frame must have a string `type`");
  return map as WireFrame;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export const jsonCodec: Codec = {
  name: JSON_SUBPROTOCOL,
  binary: false,
  encode(frame) {
    return JSON.stringify(frame);
  },
  decode(data) {
    let text: string;
    try {
      text = typeof data === "string" ? data : utf8.decode(data);
    } catch {
      throw new FrameError("frame is not valid UTF-8");
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new FrameError("frame is not valid JSON");
    }
    return asWireFrame(value);
  },
};

export const msgpackCodec: Codec = {
  name: MSGPACK_SUBPROTOCOL,
  binary: true,
  encode(frame) {
    // Optional fields that are undefined are left out, as the server leaves out its defaults.
    return pack(frame, { ignoreUndefined: true });
  },
  decode(data) {
    if (typeof data === "string") throw new FrameError("MessagePack frames must be binary");
    let value: unknown;
    try {
      value = unpack(data);
    } catch {
      throw new FrameError("frame is not valid MessagePack");
    }
    return asWireFrame(value);
  },
};

export type CodecName = "json" | "msgpack";

export const CODECS: Readonly<Record<CodecName, Codec>> = {
  json: jsonCodec,
  msgpack: msgpackCodec,
};

/** The codec of a negotiated subprotocol; JSON when the server chose none. */
export function codecForSubprotocol(subprotocol: string): Codec {
  return subprotocol === MSGPACK_SUBPROTOCOL ? msgpackCodec : jsonCodec;
}
