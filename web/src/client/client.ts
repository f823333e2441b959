/**
 * RtClient: one participant's connection to one room, kept alive across network trouble.
 *
 * It tries a WebSocket first and falls back to SSE when the WebSocket cannot bring a `welcome`;
 * after a drop it reconnects with backoff and resumes from the last room event it saw, dropping
 * replayed duplicates, so listeners see every room event exactly once and in order.
 */

import { Backoff, type BackoffOptions } from "./backoff.js";
import { CloseCode } from "./closecodes.js";
import type { CodecName } from "./codec.js";
import { Emitter } from "./emitter.js";
import {
  asServerFrame,
  type ErrorFrame,
  type HelloFrame,
  type InterruptFrame,
  isRoomEvent,
  type MessageFrame,
  type ModelSwitchFrame,
  type ModelInfo,
  type Params,
  type Participant,
  type PongFrame,
  type PresenceDiffFrame,
  type PresenceFrame,
  type PromptFrame,
  type ReasoningFrame,
  ROOM_ID,
  type RoomEvent,
  type ServerFrame,
  type Since,
  type StreamEndFrame,
  type StreamStartFrame,
  type TokenFrame,
  type ToolApprovalFrame,
  type ToolCallFrame,
  type ToolDecisionFrame,
  type ToolResultFrame,
  type UnqueuedFrame,
  type WelcomeFrame,
  type ClientFrame,
} from "./frames.js";
import { type HistoryPage, type HistoryQuery, fetchHistoryPage } from "./history.js";
import { newId } from "./ids.js";
import { Liveness } from "./liveness.js";
import { SseTransport } from "./sse.js";
import type { CloseInfo, Transport, TransportFactory, TransportKind } from "./transport.js";
import { WebSocketTransport } from "./websocket.js";

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface ConnectionInfo {
  state: ConnectionState;
  /** The transport in use or being tried; null when there is none. */
  transport: TransportKind | null;
  /** Failed attempts since the last welcome. */
  attempt: number;
  /** While reconnecting: milliseconds until the next attempt. */
  retryInMs?: number;
  /** Why the last connection ended, in words. */
  reason?: string;
  /**
   * Set when the server refused this client's token (`unauthorized`) or its access to the room
   * (`forbidden`): the client has stopped and reconnects only when told to, with a new token.
   */
  denied?: DeniedCode;
}

/** The error codes by which a server refuses a connection for good. */
export type DeniedCode = "unauthorized" | "forbidden";

/** What listeners of {@link RtClient.on} receive, by event name. */
export interface ClientEventMap {
  welcome: WelcomeFrame;
  message: MessageFrame;
  stream_start: StreamStartFrame;
  token: TokenFrame;
  tool_call: ToolCallFrame;
  stream_end: StreamEndFrame;
  model_switch: ModelSwitchFrame;
  reasoning: ReasoningFrame;
  tool_result: ToolResultFrame;
  tool_approval: ToolApprovalFrame;
  tool_decision: ToolDecisionFrame;
  unqueued: UnqueuedFrame;
  presence: PresenceFrame;
  presence_diff: PresenceDiffFrame;
  error: ErrorFrame;
  pong: PongFrame;
  state: ConnectionInfo;
}

export interface Clock {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export type TransportChoice = "auto" | TransportKind;

export interface ClientOptions {
  /** The server's base URL; empty or absent for the page's own origin. */
  server?: string;
  room: string;
  name?: string;
  token?: string;
  /** `auto` (the default) tries a WebSocket and falls back to SSE. */
  transport?: TransportChoice;
  /** The WebSocket codec to prefer; `msgpack` by default. */
  codec?: CodecName;
  backoff?: BackoffOptions;
  /** A connection that brings no `welcome` within this time counts as failed. */
  welcomeTimeoutMs?: number;
  /**
   * While connected, a `ping` goes out this often (25 s by default; 0 sends none), so that a
   * connection that died without closing is noticed. See {@link Liveness}.
   */
  pingIntervalMs?: number;
  /** Silence after a ping, in ms, that counts as a dead connection (10 s by default). */
  pingTimeoutMs?: number;
  /** For {@link RtClient.history}; tests pass a fake. */
  fetch?: typeof fetch;
  /** Makes transports; tests pass fakes. */
  createTransport?: TransportFactory;
  clock?: Clock;
}

/** How long an unanswered prompt is resent on reconnect before it is given up. */
const PENDING_PROMPT_MS = 5 * 60_000;
/**
 * Under most NAT and proxy idle timeouts (often 30 to 60 s), so the pings also keep such a
 * path open; and cheap: one small frame each way.
 */
const PING_INTERVAL_MS = 25_000;
const PING_TIMEOUT_MS = 10_000;

const realClock: Clock = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

interface PendingPrompt {
  frame: PromptFrame | InterruptFrame;
  sentAt: number;
}

export class RtClient {
  readonly room: string;
  readonly #options: ClientOptions;
  readonly #emitter = new Emitter<ClientEventMap>();
  readonly #backoff: Backoff;
  readonly #clock: Clock;
  readonly #createTransport: TransportFactory;
  readonly #liveness: Liveness;

  #state: ConnectionState = "idle";
  #transport: Transport | null = null;
  #welcomed = false;
  #everWelcomed = false;
  #welcomeTimer: unknown = null;
  #retryTimer: unknown = null;
  #reason: string | undefined;
  /** True once SSE has been chosen in `auto` mode because the WebSocket brought no welcome. */
  #preferSse = false;
  #since: Since | null = null;
  /** The refusal that came before a close 1008, if one did. */
  #denied: ErrorFrame | null = null;
  #welcome: WelcomeFrame | null = null;
  /** Prompts not yet seen as a `message` (nor refused): resent after a reconnect. */
  readonly #pending = new Map<string, PendingPrompt>();
  /** Cancels and interrupts asked for while disconnected, sent after the next welcome. */
  #queued: ClientFrame[] = [];

  constructor(options: ClientOptions) {
    if (!ROOM_ID.test(options.room)) {
      throw new RangeError(`room id must match ${ROOM_ID.source}: ${JSON.stringify(options.room)}`);
    }
    this.room = options.room;
    this.#options = options;
    this.#backoff = new Backoff(options.backoff);
    this.#clock = options.clock ?? realClock;
    this.#createTransport = options.createTransport ?? defaultTransportFactory(options.codec);
    this.#liveness = new Liveness({
      intervalMs: options.pingIntervalMs ?? PING_INTERVAL_MS,
      timeoutMs: options.pingTimeoutMs ?? PING_TIMEOUT_MS,
      clock: this.#clock,
      ping: () => this.#transport?.send({ type: "ping", id: newId() }),
      dead: () => this.#dead(),
    });
  }

  /** Adds a listener; the returned function removes it. */
  on<K extends keyof ClientEventMap>(
    type: K,
    listener: (value: ClientEventMap[K]) => void,
  ): () => void {
    return this.#emitter.on(type, listener);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The transport of the current connection, if any. */
  get transport(): TransportKind | null {
    return this.#transport?.kind ?? null;
  }

  /** The last room event seen: where a resume starts. */
  get since(): Since | null {
    return this.#since ? { ...this.#since } : null;
  }

  /** The latest welcome; its `models` and `participant` describe this connection. */
  get welcome(): WelcomeFrame | null {
    return this.#welcome;
  }

  get participant(): Participant | null {
    return this.#welcome?.participant ?? null;
  }

  get models(): readonly ModelInfo[] {
    return this.#welcome?.models ?? [];
  }

  connect(): void {
    if (this.#state !== "idle" && this.#state !== "closed") return;
    this.#reason = undefined;
    this.#denied = null;
    this.#open();
  }

  /** Ends the connection for good; streams in the room run on. */
  close(): void {
    this.#clearTimers();
    this.#detach()?.close();
    this.#setState("closed");
  }

  /** Skips the wait of a pending reconnect (for example when the browser comes back online). */
  reconnectNow(): void {
    if (this.#state !== "reconnecting" || this.#transport) return;
    this.#clearTimers();
    this.#open();
  }

  /**
   * Sends a prompt and returns its id. A prompt sent while disconnected, or whose connection
   * drops before the server echoes it, is resent after reconnecting; its id makes that safe.
   */
  prompt(text: string, options: { models?: string[]; params?: Params; id?: string } = {}): string {
    const frame: PromptFrame = { type: "prompt", id: options.id ?? newId(), text };
    if (options.models) frame.models = options.models;
    if (options.params) frame.params = options.params;
    this.#pending.set(frame.id, { frame, sentAt: this.#clock.now() });
    if (this.#state === "open") this.#transport?.send(frame);
    return frame.id;
  }

  /** Cancels one stream, one model's streams, or (with neither) every stream in the room. */
  cancel(target: { stream?: string; model?: string } = {}): void {
    const frame: ClientFrame = { type: "cancel", id: newId() };
    if (target.stream) frame.stream = target.stream;
    if (target.model) frame.model = target.model;
    this.#sendOrQueue(frame);
  }

  /**
   * Ends every running stream; with `text`, then sends it as a new prompt. Returns the frame id,
   * which is also the new prompt's id. With `text` it is resent after a reconnect like a prompt.
   */
  interrupt(options: { text?: string; models?: string[]; params?: Params } = {}): string {
    const id = newId();
    const frame: InterruptFrame = { type: "interrupt", id };
    if (options.text === undefined) {
      this.#sendOrQueue(frame);
      return id;
    }
    frame.text = options.text;
    if (options.models) frame.models = options.models;
    if (options.params) frame.params = options.params;
    // With text it is a prompt, and its id makes a resend a no-op just the same.
    this.#pending.set(id, { frame, sentAt: this.#clock.now() });
    if (this.#state === "open") this.#transport?.send(frame);
    return id;
  }

  /**
   * Answers a `tool_approval`: run the call (`allow`) or deny it. Returns the frame id, which an
   * `error` answering it (`forbidden` for a viewer, `not_found` once decided) names as `ref`.
   */
  approve(call: string, allow: boolean): string {
    const id = newId();
    this.#sendOrQueue({ type: "approve", id, call, allow });
    return id;
  }

  /**
   * Runs `model`'s reply to the user message `replyTo` again (queued like a prompt while
   * streams run); its `stream_start` names the reply it replaces. Returns the frame id, the
   * `ref` of an error refusing it.
   */
  regenerate(model: string, replyTo: string): string {
    const id = newId();
    this.#sendOrQueue({ type: "regenerate", id, model, reply_to: replyTo });
    return id;
  }

  /**
   * Takes this participant's own queued prompt (its user message id) out of the room's queue;
   * the room hears of it as `unqueued` with reason `withdrawn`. Returns the frame id.
   */
  withdraw(message: string): string {
    const id = newId();
    this.#sendOrQueue({ type: "withdraw", id, message });
    return id;
  }

  /** Tells the room whether this participant is typing; dropped while disconnected. */
  typing(active: boolean): void {
    if (this.#state === "open") this.#transport?.send({ type: "typing", active });
  }

  /** Asks for a `pong` carrying the returned id; dropped while disconnected. */
  ping(): string {
    const id = newId();
    if (this.#state === "open") this.#transport?.send({ type: "ping", id });
    return id;
  }

  /**
   * One page of the room's stored messages, oldest first: those before the message `before`
   * (the newest ones without it), at most `limit` (50 by default, up to 200). `next` is the
   * `before` of the page preceding this one, or null when this page starts the room. Needs no
   * connection. Rejects with a {@link HistoryError} whose message is fit to show.
   */
  history(query: HistoryQuery = {}): Promise<HistoryPage> {
    return fetchHistoryPage(
      {
        server: this.#options.server ?? "",
        room: this.room,
        clock: this.#clock,
        token: this.#options.token,
      },
      query,
      this.#options.fetch ?? globalThis.fetch.bind(globalThis),
    );
  }

  // --- connection lifecycle ----------------------------------------------------------------

  #open(): void {
    const kind = this.#nextKind();
    const hello: HelloFrame = { type: "hello" };
    if (this.#options.name) hello.name = this.#options.name;
    if (this.#options.token) hello.token = this.#options.token;
    if (this.#since) hello.since = { ...this.#since };
    this.#welcomed = false;
    this.#setState(this.#everWelcomed ? "reconnecting" : "connecting", kind);
    // Each transport gets its own handlers, so a late callback of a replaced one is ignored.
    let transport: Transport | null = null;
    const isCurrent = () => transport !== null && transport === this.#transport;
    transport = this.#createTransport(
      kind,
      { server: this.#options.server ?? "", room: this.room, hello },
      {
        onFrame: (wire) => {
          if (!isCurrent()) return;
          this.#liveness.heard();
          const frame = asServerFrame(wire);
          if (frame) this.#receive(frame);
          // A room event of a later protocol version: ignored, but its seq still counts.
          else if (Number.isInteger(wire["seq"])) this.#inSequence(wire["seq"] as number);
        },
        onClose: (info) => {
          if (isCurrent()) this.#lost(kind, info);
        },
      },
    );
    this.#transport = transport;
    this.#welcomeTimer = this.#clock.setTimeout(() => {
      this.#welcomeTimer = null;
      this.#detach()?.close();
      this.#lost(kind, { code: null, reason: "no welcome from the server", opened: false });
    }, this.#options.welcomeTimeoutMs ?? 10_000);
  }

  #nextKind(): TransportKind {
    const choice = this.#options.transport ?? "auto";
    if (choice !== "auto") return choice;
    return this.#preferSse ? "sse" : "websocket";
  }

  #lost(kind: TransportKind, info: CloseInfo): void {
    this.#detach();
    this.#clearTimers();
    this.#reason =
      info.reason || (info.code !== null ? `closed with code ${info.code}` : "connection lost");
    if (info.code === CloseCode.POLICY_VIOLATION) {
      // Retrying with the same token would be refused the same way, again and again.
      if (this.#denied) this.#reason = this.#denied.message;
      this.#setState("closed");
      return;
    }
    const auto = (this.#options.transport ?? "auto") === "auto";
    if (auto && !this.#welcomed) {
      // A WebSocket that brings no welcome may be blocked on the way: try SSE straight away.
      // SSE failing too means the server itself is unreachable: back off, then start over.
      if (kind === "websocket") {
        this.#preferSse = true;
        this.#open();
        return;
      }
      this.#preferSse = false;
    }
    // A slow consumer was cut off on purpose and the server is fine: come back at once, with
    // a little jitter so that a burst of them does not return together.
    const delay = info.code === CloseCode.SLOW_CONSUMER ? this.#backoff.jitter(250) : this.#backoff.next();
    this.#setState("reconnecting", null, delay);
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = null;
      this.#open();
    }, delay);
  }

  /** The connection went silent after a ping: it is gone, though nothing closed it. */
  #dead(): void {
    const transport = this.#detach();
    if (!transport) return;
    transport.close();
    this.#lost(transport.kind, {
      code: null,
      reason: "the server stopped answering",
      opened: true,
    });
  }

  #detach(): Transport | null {
    const transport = this.#transport;
    this.#transport = null;
    return transport;
  }

  #clearTimers(): void {
    this.#liveness.stop();
    if (this.#welcomeTimer !== null) this.#clock.clearTimeout(this.#welcomeTimer);
    if (this.#retryTimer !== null) this.#clock.clearTimeout(this.#retryTimer);
    this.#welcomeTimer = this.#retryTimer = null;
  }

  #setState(
    state: ConnectionState,
    transport: TransportKind | null = null,
    retryInMs?: number,
  ): void {
    this.#state = state;
    const info: ConnectionInfo = { state, transport, attempt: this.#backoff.attempt };
    if (retryInMs !== undefined) info.retryInMs = retryInMs;
    if (this.#reason && state !== "open") info.reason = this.#reason;
    if (this.#denied && state === "closed") info.denied = this.#denied.code as DeniedCode;
    this.#emitter.emit("state", info);
  }

  // --- frames ------------------------------------------------------------------------------

  #receive(frame: ServerFrame): void {
    if (frame.type === "welcome") {
      this.#onWelcome(frame);
      return;
    }
    if (isRoomEvent(frame)) {
      this.#onRoomEvent(frame);
      return;
    }
    switch (frame.type) {
      case "presence":
        this.#emitter.emit("presence", frame);
        return;
      case "presence_diff":
        this.#emitter.emit("presence_diff", frame);
        return;
      case "error":
        if (frame.ref) this.#pending.delete(frame.ref);
        else if (isDenial(frame)) this.#denied = frame;
        this.#emitter.emit("error", frame);
        return;
      case "pong":
        this.#emitter.emit("pong", frame);
        return;
    }
  }

  #onWelcome(welcome: WelcomeFrame): void {
    if (this.#welcomeTimer !== null) this.#clock.clearTimeout(this.#welcomeTimer);
    this.#welcomeTimer = null;
    const resumed = welcome.resumed && this.#since !== null && this.#since.epoch === welcome.epoch;
    if (!resumed) {
      this.#since = { epoch: welcome.epoch, seq: welcome.seq };
      // A snapshot holds the prompts the server already took: those need no resend.
      for (const message of welcome.messages) {
        if (message.prompt_id) this.#pending.delete(message.prompt_id);
      }
    }
    this.#welcome = resumed ? welcome : { ...welcome, resumed: false };
    this.#welcomed = this.#everWelcomed = true;
    this.#reason = undefined;
    this.#denied = null;
    this.#backoff.reset();
    this.#liveness.start();
    this.#setState("open", this.#transport?.kind ?? null);
    this.#emitter.emit("welcome", this.#welcome);
    this.#flush();
  }

  /**
   * Moves `since` on to a room event's seq; false for a duplicate to drop, and for a gap, after
   * which the client reconnects to resume from the last event before it.
   */
  #inSequence(seq: number): boolean {
    if (!this.#welcomed || !this.#since || seq <= this.#since.seq) return false;
    if (seq !== this.#since.seq + 1) {
      const transport = this.#detach();
      transport?.close();
      this.#lost(transport?.kind ?? "websocket", {
        code: null,
        reason: "missed room events",
        opened: true,
      });
      return false;
    }
    this.#since.seq = seq;
    return true;
  }

  #onRoomEvent(event: RoomEvent): void {
    if (!this.#inSequence(event.seq)) return;
    switch (event.type) {
      case "message":
        this.#pending.delete(event.prompt_id);
        this.#emitter.emit("message", event);
        return;
      case "stream_start":
        this.#emitter.emit("stream_start", event);
        return;
      case "token":
        this.#emitter.emit("token", event);
        return;
      case "tool_call":
        this.#emitter.emit("tool_call", event);
        return;
      case "stream_end":
        this.#emitter.emit("stream_end", event);
        return;
      case "model_switch":
        this.#emitter.emit("model_switch", event);
        return;
      case "reasoning":
        this.#emitter.emit("reasoning", event);
        return;
      case "tool_result":
        this.#emitter.emit("tool_result", event);
        return;
      case "tool_approval":
        this.#emitter.emit("tool_approval", event);
        return;
      case "tool_decision":
        this.#emitter.emit("tool_decision", event);
        return;
      case "unqueued":
        this.#emitter.emit("unqueued", event);
        return;
    }
  }

  #sendOrQueue(frame: ClientFrame): void {
    if (this.#state === "open" && this.#transport) this.#transport.send(frame);
    else this.#queued.push(frame);
  }

  #flush(): void {
    const transport = this.#transport;
    if (!transport) return;
    // Cancels go before prompts: a prompt sent first would wait in the room's queue behind
    // the very streams the cancel was meant to end, and a cancel of everything would clear it.
    const queued = this.#queued;
    this.#queued = [];
    for (const frame of queued) transport.send(frame);
    const now = this.#clock.now();
    for (const [id, pending] of this.#pending) {
      if (now - pending.sentAt > PENDING_PROMPT_MS) this.#pending.delete(id);
      else transport.send(pending.frame);
    }
  }
}

function defaultTransportFactory(codec: CodecName | undefined): TransportFactory {
  return (kind, request, events) =>
    kind === "websocket"
      ? new WebSocketTransport(request, events, codec ? { codec } : {})
      : new SseTransport(request, events);
}

/** An error about the connection itself (no `ref`) that says access is refused. */
function isDenial(frame: ErrorFrame): boolean {
  return frame.code === "unauthorized" || frame.code === "forbidden";
}
