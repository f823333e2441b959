/** The primary transport: one WebSocket, one frame per message, hello sent on open. */

import { CloseCode } from "./closecodes.js";
import {
  CODECS,
  type Codec,
  type CodecName,
  codecForSubprotocol,
  FrameError,
  type WireData,
} from "./codec.js";
import type { ClientFrame } from "./frames.js";
import {
  apiUrl,
  type ConnectRequest,
  roomPath,
  type Transport,
  type TransportEvents,
} from "./transport.js";

export interface WebSocketTransportOptions {
  /** The codec to offer first; the other is offered too and the server picks. */
  codec?: CodecName;
  WebSocket?: typeof WebSocket;
}


export function webSocketUrl(server: string, room: string): string {
  const url = apiUrl(server, roomPath(room, "ws"));
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

export class WebSocketTransport implements Transport {
  readonly kind = "websocket";
  readonly #socket: WebSocket;
  readonly #events: TransportEvents;
  #codec: Codec;
  #opened = false;
  #done = false;

  constructor(
    request: ConnectRequest,
    events: TransportEvents,
    options: WebSocketTransportOptions = {},
  ) {
    this.#events = events;
    const preferred = CODECS[options.codec ?? "msgpack"];
    const other = preferred === CODECS.json ? CODECS.msgpack : CODECS.json;
    this.#codec = preferred;
    const Impl = options.WebSocket ?? globalThis.WebSocket;
    this.#socket = new Impl(webSocketUrl(request.server, request.room), [
      preferred.name,
      other.name,
    ]);
    this.#socket.binaryType = "arraybuffer";
    this.#socket.onopen = () => {
      this.#opened = true;
      this.#codec = codecForSubprotocol(this.#socket.protocol);
      this.send(request.hello);
    };
    this.#socket.onmessage = (event: MessageEvent<unknown>) => this.#receive(event.data);
    this.#socket.onclose = (event: CloseEvent) => this.#finish(event.code, event.reason);
  }

  send(frame: ClientFrame): void {
    if (this.#done || this.#socket.readyState !== this.#socket.OPEN) return;
    this.#socket.send(this.#codec.encode(frame));
  }

  close(): void {
    this.#done = true;
    this.#socket.close(CloseCode.NORMAL);
  }

  #receive(data: unknown): void {
    if (this.#done) return;
    const wire: WireData | ArrayBuffer | null =
      typeof data === "string" || data instanceof ArrayBuffer ? data : null;
    try {
      if (wire === null) throw new FrameError("unexpected message data");
      this.#events.onFrame(this.#codec.decode(wire));
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.#socket.close(CloseCode.PROTOCOL_ERROR);
      this.#finish(null, `bad frame from server: ${error.message}`);
    }
  }

  #finish(code: number | null, reason: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#events.onClose({ code, reason, opened: this.#opened });
  }
}
