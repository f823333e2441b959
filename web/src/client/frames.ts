/**
 * Frames of protocol v1 (protocol/PROTOCOL.md), as TypeScript types.
 *
 * Mirrors rtserver/protocol/frames.py: every frame is a plain object tagged by `type`. Optional fields are
 * left out of encoded frames, so they are optional here too; fields the server always sends, even
 * as null, are required and nullable.
 */

export type StreamReason = "complete" | "cancelled" | "interrupted" | "length" | "error";
export type MessageStatus = "complete" | "streaming" | "cancelled" | "interrupted" | "error";
export type Role = "user" | "assistant";
export type ErrorCode =
  | "bad_frame"
  | "unknown_type"
  | "unknown_model"
  | "not_found"
  | "forbidden"
  | "unauthorized"
  | "rate_limited"
  | "too_large"
  | "busy"
  | "provider_error"
  | "internal";

// --- client -> server ----------------------------------------------------------------------

export interface Since {
  epoch: string;
  seq: number;
}

export interface Params {
  temperature?: number;
  max_tokens?: number;
  /** Ask the demo models to think first; vendor models think by their configured params. */
  reasoning?: boolean;
}

export interface HelloFrame {
  type: "hello";
  id?: string;
  name?: string;
  token?: string;
  since?: Since;
}

export interface PromptFrame {
  type: "prompt";
  id: string;
  text: string;
  models?: string[];
  params?: Params;
}

export interface CancelFrame {
  type: "cancel";
  id?: string;
  stream?: string;
  model?: string;
}

export interface InterruptFrame {
  type: "interrupt";
  id?: string;
  text?: string;
  models?: string[];
  params?: Params;
}

export interface TypingFrame {
  type: "typing";
  id?: string;
  active: boolean;
}

export interface PingFrame {
  type: "ping";
  id?: string;
}

/** A member's answer to a `tool_approval` (issue 17). */
export interface ApproveFrame {
  type: "approve";
  id?: string;
  call: string;
  allow: boolean;
}

// --- client -> server: the room's queue and regenerate (issue 16) ---------------------------

/** Takes one's own queued prompt (by its user message id) out of the room's queue. */
export interface WithdrawFrame {
  type: "withdraw";
  id?: string;
  message: string;
}

/** Runs `model`'s reply to user message `reply_to` again; queued like a prompt. */
export interface RegenerateFrame {
  type: "regenerate";
  id?: string;
  model: string;
  reply_to: string;
}

export type ClientFrame =
  | HelloFrame
  | PromptFrame
  | CancelFrame
  | InterruptFrame
  | TypingFrame
  | PingFrame
  | ApproveFrame
  | WithdrawFrame
  | RegenerateFrame;

// --- shared records ------------------------------------------------------------------------

export interface Participant {
  id: string;
  name: string;
}

export interface PresenceEntry {
  id: string;
  name: string;
  typing: boolean;
}

export interface ModelInfo {
  id: string;
  label: string;
  provider: string;
  /** Extension: the model's text is made up on the server (the built-in demo models). */
  simulated?: boolean;
  /** Extension: a prompt without `models` goes to this model. */
  default?: boolean;
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  /** Extension: the provider sent no counts and the server estimated them. */
  estimated?: boolean;
}

export interface ErrorInfo {
  code: ErrorCode;
  message: string;
  retry_after?: number;
}

export type ToolErrorCode =
  | "failed"
  | "timeout"
  | "denied"
  | "unknown_tool"
  | "bad_arguments"
  | "cancelled";

/** Why a tool call has no result; receivers accept codes they do not know. */
export interface ToolErrorInfo {
  code: ToolErrorCode | string;
  message: string;
}

export interface ToolCallRecord {
  call: string;
  name?: string;
  args?: string;
  /** Extension (tools the server runs): the call's result or error, and how long it ran. */
  result?: string;
  error?: ToolErrorInfo;
  duration_ms?: number;
}

export interface HistoryMessage {
  id: string;
  role: Role;
  text: string;
  status: MessageStatus;
  ts: number;
  author?: Participant;
  model?: string;
  reply_to?: string;
  usage?: Usage;
  /** Extension: the client's prompt id of a user message. */
  prompt_id?: string;
  /** Extension: the stream that produced an assistant message. */
  stream?: string;
  /** Extension: finished tool calls of an assistant message. */
  tool_calls?: ToolCallRecord[];
  /** Extension: what went wrong, for status `error`. */
  error?: ErrorInfo;
  /** Extension (routers): the router whose lane this reply is in; `model` answered it. */
  routed_from?: string;
  /** Extension: an assistant message's thinking text, kept apart from `text`. */
  reasoning?: string;
  /** Extension: a user message waiting in the room's queue. */
  queued?: boolean;
  /** Extension: a user message that never ran (withdrawn, cleared by a cancel, or dropped). */
  withdrawn?: boolean;
  /** Extension: the assistant message a regenerated reply supersedes. */
  replaces?: string;
}

export interface RunningStream {
  stream: string;
  model: string;
  message: string;
  reply_to: string;
  text: string;
  /** Extension (routers): the router whose lane this stream is in; `model` answers it. */
  routed_from?: string;
  /** Extension: the stream's thinking text so far, when it has some. */
  reasoning?: string;
  /** Extension (tools): the stream's calls so far, with results of ended ones. */
  tool_calls?: ToolCallRecord[];
  /** Extension (tools): its calls waiting for an `approve` now. */
  waiting?: string[];
}

// --- server -> client ----------------------------------------------------------------------

export interface WelcomeFrame {
  type: "welcome";
  session: string;
  participant: Participant;
  room: string;
  epoch: string;
  seq: number;
  resumed: boolean;
  models: ModelInfo[];
  participants: PresenceEntry[];
  messages: HistoryMessage[];
  streams: RunningStream[];
  /** How many are connected; `participants` lists a bounded few. Absent from older servers. */
  participant_count?: number;
}

export interface MessageFrame {
  type: "message";
  seq: number;
  id: string;
  author: Participant;
  text: string;
  prompt_id: string;
  ts: number;
  /** Extension: stored, waiting in the room's queue; an `unqueued` event follows. */
  queued?: boolean;
}

export interface StreamStartFrame {
  type: "stream_start";
  seq: number;
  stream: string;
  model: string;
  message: string;
  reply_to: string;
  ts: number;
  /** Extension (routers): the router that chose `model`. */
  routed_from?: string;
  /** Extension (routers): why it chose it, in a few words for people. */
  route_reason?: string;
  /** Extension: the assistant message this stream supersedes (a regenerate). */
  replaces?: string;
}

export interface TokenFrame {
  type: "token";
  seq: number;
  stream: string;
  text: string;
  /** Unix microseconds when the provider emitted the (first) token; demo models with `stamp`. */
  emitted_us?: number;
  /** How many tokens `text` holds, when more than one (a coalesced frame). */
  tokens?: number;
}

export interface ToolCallFrame {
  type: "tool_call";
  seq: number;
  stream: string;
  call: string;
  args: string;
  name?: string;
}

export interface StreamEndFrame {
  type: "stream_end";
  seq: number;
  stream: string;
  reason: StreamReason;
  usage: Usage | null;
  ttft_ms: number | null;
  duration_ms: number;
  tokens_per_s: number | null;
  error?: ErrorInfo;
  /** Extension: `tokens_per_s` was computed from an estimated `usage`. */
  tokens_per_s_estimated?: boolean;
}

/** Retired: the whole list, as older servers sent it. Current servers send `presence_diff`. */
export interface PresenceFrame {
  type: "presence";
  participants: PresenceEntry[];
}

/**
 * What changed in the room's participant list since the last presence frame: `changed` entries
 * are added or replace the entry with their id, `left` ids are removed, `count` is everyone.
 */
export interface PresenceDiffFrame {
  type: "presence_diff";
  changed: PresenceEntry[];
  left: string[];
  count: number;
}

export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  message: string;
  ref?: string;
  retry_after?: number;
}

export interface PongFrame {
  type: "pong";
  id?: string;
}

// --- routers (issue 18) -------------------------------------------------------------------

/** A routed stream's model failed before its first token: `model` answers from now on. */
export interface ModelSwitchFrame {
  type: "model_switch";
  seq: number;
  stream: string;
  model: string;
  reason: string;
}

/** Thinking text of a stream, to append to its reasoning; never part of the answer. */
export interface ReasoningFrame {
  type: "reasoning";
  seq: number;
  stream: string;
  text: string;
}

/** A tool call the server ran has ended (issue 17). */
export interface ToolResultFrame {
  type: "tool_result";
  seq: number;
  stream: string;
  call: string;
  name: string;
  duration_ms: number;
  result?: string;
  error?: ToolErrorInfo;
}

/** A tool call waits for a member's `approve`; `args` is its whole JSON text. */
export interface ToolApprovalFrame {
  type: "tool_approval";
  seq: number;
  stream: string;
  call: string;
  name: string;
  args: string;
}

/** A `tool_approval` answered by `by`, or timed out (no `by`: a denial). */
export interface ToolDecisionFrame {
  type: "tool_decision";
  seq: number;
  stream: string;
  call: string;
  allow: boolean;
  by?: Participant;
}

// --- server -> client: the room's queue (issue 16) --------------------------------------------

export type UnqueuedReason = "started" | "withdrawn" | "cleared";

/** Queued prompts (user message ids, in queue order) left the room's queue. */
export interface UnqueuedFrame {
  type: "unqueued";
  seq: number;
  messages: string[];
  reason: UnqueuedReason;
}

export type RoomEvent =
  | MessageFrame
  | StreamStartFrame
  | TokenFrame
  | ToolCallFrame
  | StreamEndFrame
  | ReasoningFrame
  | ToolResultFrame
  | ToolApprovalFrame
  | ToolDecisionFrame
  | ModelSwitchFrame
  | UnqueuedFrame;

export type ServerFrame =
  | WelcomeFrame
  | RoomEvent
  | PresenceFrame
  | PresenceDiffFrame
  | ErrorFrame
  | PongFrame;

const ROOM_EVENT_TYPES: ReadonlySet<string> = new Set([
  "message",
  "stream_start",
  "token",
  "tool_call",
  "stream_end",
  "model_switch",
  "reasoning",
  "tool_result",
  "tool_approval",
  "tool_decision",
  "unqueued",
]);

const SERVER_TYPES: ReadonlySet<string> = new Set([
  ...ROOM_EVENT_TYPES,
  "welcome",
  "presence",
  "presence_diff",
  "error",
  "pong",
]);

export function isRoomEvent(frame: ServerFrame): frame is RoomEvent {
  return ROOM_EVENT_TYPES.has(frame.type);
}

/** Room ids the server accepts; checked early so a typo fails with a clear message. */
export const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Narrows a decoded wire map to a server frame, or null for a frame type this client does not
 * know (receivers ignore those, so that the protocol can add frame types).
 *
 * Only the envelope is checked here: the fields come from our own server, whose frames are
 * typed at the source and pinned by the shared vectors.
 */
export function asServerFrame(value: Record<string, unknown>): ServerFrame | null {
  const kind = value["type"];
  if (typeof kind !== "string" || !SERVER_TYPES.has(kind)) return null;
  if (ROOM_EVENT_TYPES.has(kind) && typeof value["seq"] !== "number") return null;
  return value as unknown as ServerFrame;
}
