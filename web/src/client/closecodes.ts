/**
 * Every WebSocket close code rtserver uses: the mirror of rtserver/protocol/closecodes.py,
 * pinned by protocol/vectors/closecodes.json (checked by test/closecodes.test.ts).
 */

export const CloseCode = {
  /** The connection ended as asked. */
  NORMAL: 1000,
  /** The server is going away, or the room could not take the participant: reconnect. */
  GOING_AWAY: 1001,
  /** A protocol error (no hello first, bytes that are no frame): do not retry as is. */
  PROTOCOL_ERROR: 1002,
  /** Never sent: the connection was lost without a close frame. */
  CONNECTION_LOST: 1006,
  /** The token was refused (after `unauthorized` or `forbidden`): retrying cannot help. */
  POLICY_VIOLATION: 1008,
  /** A client frame was over the server's frame limit. */
  MESSAGE_TOO_BIG: 1009,
  /** The server failed (it could not open the room): retry later. */
  INTERNAL_ERROR: 1011,
  /** Refused for now (`busy`, `rate_limited`): retry after a while. */
  TRY_AGAIN_LATER: 1013,
  /** The participant read too slowly: reconnect at once and resume. */
  SLOW_CONSUMER: 4000,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
