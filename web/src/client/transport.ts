/**
 * The transport contract between the client and a connection: WebSocket or SSE + POST.
 *
 * A transport opens itself on construction, says hello in its own way (a `hello` frame on a
 * WebSocket, query parameters on an event stream), hands every decoded frame to `onFrame` and
 * calls `onClose` exactly once when the connection ends for any reason other than `close()`.
 */

import type { WireFrame } from "./codec.js";
import type { ClientFrame, HelloFrame } from "./frames.js";

export type TransportKind = "websocket" | "sse";

export interface ConnectRequest {
  /** The server's base URL (http or https); empty for the page's own origin. */
  server: string;
  room: string;
  hello: HelloFrame;
}

export interface CloseInfo {
  /** The WebSocket close code, or null when there was none (SSE, network failure). */
  code: number | null;
  reason: string;
  /** True when the connection opened before it closed. */
  opened: boolean;
}

export interface TransportEvents {
  onFrame(frame: WireFrame): void;
  onClose(info: CloseInfo): void;
}

export interface Transport {
  readonly kind: TransportKind;
  send(frame: ClientFrame): void;
  /** Ends the connection without calling `onClose`. */
  close(): void;
}

export type TransportFactory = (
  kind: TransportKind,
  request: ConnectRequest,
  events: TransportEvents,
) => Transport;

/** The absolute URL of an API path on `server` (or on the page's origin when it is empty). */
export function apiUrl(server: string, path: string): URL {
  const base = server || globalThis.location?.origin;
  if (!base) throw new Error("rtserver client: `server` is required outside a browser page");
  return new URL(path, base.endsWith("/") ? base : `${base}/`);
}

export function roomPath(room: string, leaf: string): string {
  return `v1/rooms/${encodeURIComponent(room)}/${leaf}`;
}
