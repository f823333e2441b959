/** rtserver's browser client: protocol v1 over WebSocket, with SSE as the fallback. */

export { Backoff, type BackoffOptions } from "./backoff.js";
export {
  type ClientEventMap,
  type ClientOptions,
  type Clock,
  type ConnectionInfo,
  type ConnectionState,
  RtClient,
  type TransportChoice,
} from "./client.js";
export {
  type Codec,
  type CodecName,
  CODECS,
  FrameError,
  JSON_SUBPROTOCOL,
  jsonCodec,
  MSGPACK_SUBPROTOCOL,
  msgpackCodec,
  type WireFrame,
} from "./codec.js";
export { CloseCode } from "./closecodes.js";
export { EarlierMessages, type PageSource } from "./earlier.js";
export type * from "./frames.js";
export { asServerFrame, isRoomEvent, ROOM_ID } from "./frames.js";
export {
  HISTORY_TIMEOUT_MS,
  HistoryError,
  type HistoryPage,
  type HistoryQuery,
} from "./history.js";
export { Liveness, type LivenessOptions } from "./liveness.js";
export {
  type Change,
  type EarlierPage,
  type EarlierStatus,
  type Reply,
  RoomState,
  type Turn,
} from "./room-state.js";
export type {
  CloseInfo,
  ConnectRequest,
  Transport,
  TransportEvents,
  TransportFactory,
  TransportKind,
} from "./transport.js";
