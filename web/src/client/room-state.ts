/**
 * RoomState: the conversation as the frames of one room describe it, for a view to draw.
 *
 * No DOM here: it folds `welcome` snapshots and room events into turns (a user message and the
 * replies to it, one lane per model) and reports what changed, so a view can redraw only that.
 */

import type {
  ErrorInfo,
  HistoryMessage,
  MessageFrame,
  MessageStatus,
  ModelInfo,
  Participant,
  PresenceDiffFrame,
  PresenceEntry,
  RoomEvent,
  StreamReason,
  ToolCallRecord,
  UnqueuedFrame,
  Usage,
  WelcomeFrame,
} from "./frames.js";

/** A routed stream's change of model: who failed before its first token, and who took over. */
export interface ModelSwitch {
  from: string;
  to: string;
  reason: string;
}

export interface Reply {
  /** The assistant message id. */
  readonly id: string;
  /** The model answering: a router's choice, changed by `model_switch`. */
  model: string;
  /**
   * The lane the reply is in: its router's id when routed (set by the frame that first tells
   * of the reply, so it never moves), else its model's.
   */
  readonly lane: string;
  /** The router that chose `model`, when routed. */
  readonly routedFrom: string | null;
  /** Why the router chose its first model (`stream_start.route_reason`); live streams only. */
  routeReason: string | null;
  /** The switches of model this reply went through, oldest first. */
  readonly switches: ModelSwitch[];
  /** The user message this answers. */
  readonly replyTo: string;
  /** The reply of the same model that this one regenerated; null for a first answer. */
  replaces: string | null;
  stream: string | null;
  text: string;
  /** The model's thinking text, apart from the answer in `text`; empty when it had none. */
  reasoning: string;
  status: MessageStatus;
  ts: number;
  /** Why the stream ended, once it has; history messages only know their status. */
  reason: StreamReason | null;
  usage: Usage | null;
  ttftMs: number | null;
  durationMs: number | null;
  tokensPerS: number | null;
  /** The server computed `tokensPerS` from estimated usage. */
  tokensPerSEstimated: boolean;
  error: ErrorInfo | null;
  toolCalls: ToolCallView[];
  /** Token events seen live, for a running rate before the server's own figure arrives. */
  liveTokens: number;
  /** Client clock at the first live token, in ms; null before it or for history. */
  firstTokenAt: number | null;
}

/** Where a call stands with its approval: asked and waiting, or answered. */
export type ApprovalState = "waiting" | "allowed" | "denied";

/** A tool call as the room has seen it so far: its record, and its approval if it asked. */
export interface ToolCallView extends ToolCallRecord {
  approval?: ApprovalState;
  /** Who answered the approval; null when it timed out. */
  decidedBy?: Participant | null;
}

export interface Turn {
  /** The user message id. */
  readonly id: string;
  readonly author: Participant | null;
  readonly text: string;
  readonly ts: number;
  readonly promptId: string | null;
  /** Replies in the order they started; a model may have several (newest last). */
  readonly replies: Reply[];
  /** Waiting in the room's queue (see {@link RoomState.queue}), not yet in `turns`. */
  queued: boolean;
  /** Never ran: withdrawn by its author, cleared by a cancel, or dropped at a restart. */
  withdrawn: boolean;
}

export type Change =
  | { kind: "reset" }
  | { kind: "turn"; turn: Turn }
  /** Turns from earlier history, put before every other turn; oldest first. */
  | { kind: "earlier"; turns: Turn[] }
  | { kind: "reply"; reply: Reply }
  /** The room's queue changed: see {@link RoomState.queue}. */
  | { kind: "queue" }
  | { kind: "presence" };

export type Now = () => number;

/**
 * Whether the room holds messages before the oldest one known here: `unknown` until someone
 * asks the server (after each snapshot), `none` once the start of the room is known.
 */
export type EarlierStatus = "unknown" | "more" | "none";

/** A page of earlier history, as `RtClient.history` answers it. */
export interface EarlierPage {
  messages: HistoryMessage[];
  next: string | null;
}

export class RoomState {
  models: ModelInfo[] = [];
  /** Who is listed, in the order they joined: the server lists a bounded few of a big room. */
  participants: PresenceEntry[] = [];
  /** How many are connected, listed or not. */
  participantCount = 0;
  me: Participant | null = null;
  readonly turns: Turn[] = [];
  /**
   * The room's queue: prompts stored while streams ran, in the order they will run. Each
   * leaves it for `turns` when it starts, or when it is withdrawn or cleared (as withdrawn).
   */
  readonly queue: Turn[] = [];
  readonly #turns = new Map<string, Turn>();
  readonly #replies = new Map<string, Reply>();
  readonly #byStream = new Map<string, Reply>();
  /** Streams running now, by the server's word (welcome.streams, stream_start, stream_end). */
  readonly #running = new Set<string>();
  readonly #now: Now;
  #earlier: EarlierStatus = "unknown";
  #snapshots = 0;
  /** The oldest message id of every snapshot and page so far, kept or not. */
  #oldest: string | null = null;
  /**
   * Replies whose user message is older than anything known: history starts mid-conversation.
   * They are kept until a page of earlier history brings their turn.
   */
  #orphans: HistoryMessage[] = [];

  constructor(now: Now = () => performance.now()) {
    this.#now = now;
  }

  /** True while any reply in the room is streaming. */
  get busy(): boolean {
    return this.#running.size > 0;
  }

  /** Replies streaming now, in the order they started. */
  running(): Reply[] {
    return [...this.#running].flatMap((stream) => this.#byStream.get(stream) ?? []);
  }

  reply(id: string): Reply | undefined {
    return this.#replies.get(id);
  }

  /** The reply a stream writes. */
  replyOfStream(stream: string): Reply | undefined {
    return this.#byStream.get(stream);
  }

  model(id: string): ModelInfo | undefined {
    return this.models.find((model) => model.id === id);
  }

  get earlier(): EarlierStatus {
    return this.#earlier;
  }

  /**
   * How many snapshots have replaced the conversation. A page asked for under one snapshot
   * means nothing under the next: pass the count taken when asking to {@link prependHistory}.
   */
  get snapshots(): number {
    return this.#snapshots;
  }

  /** The `before` of the next page of earlier history; null when nothing is known yet. */
  get oldestMessageId(): string | null {
    return this.#oldest ?? this.turns[0]?.id ?? null;
  }

  /** Records whether there is history before the oldest message, when a probe has told. */
  noteEarlier(more: boolean, snapshots: number): void {
    if (snapshots === this.#snapshots) this.#earlier = more ? "more" : "none";
  }

  /**
   * Puts a page of earlier history (asked for with `before` = {@link oldestMessageId}) before
   * the conversation. Messages already here are skipped, by id; replies kept waiting for their
   * user message join it now. Nothing happens when a snapshot came after the page was asked for.
   */
  prependHistory(page: EarlierPage, snapshots: number): Change[] {
    if (snapshots !== this.#snapshots) return [];
    const added: Turn[] = [];
    const queuedEarlier: Turn[] = [];
    const repliesToKnownTurns: Reply[] = [];
    const waiting = this.#orphans;
    this.#orphans = [];
    for (const message of [...page.messages, ...waiting]) {
      if (message.role === "user") {
        if (this.#turns.has(message.id)) continue;
        const turn = this.#newTurn(message);
        if (turn.queued) queuedEarlier.push(turn);
        else added.push(turn);
        continue;
      }
      if (this.#replies.has(message.id)) continue;
      const reply = this.#addHistoryReply(message);
      if (reply && !added.some((turn) => turn.id === reply.replyTo)) {
        repliesToKnownTurns.push(reply);
      }
    }
    this.turns.unshift(...added);
    this.queue.unshift(...queuedEarlier);
    this.#oldest = page.messages[0]?.id ?? this.#oldest;
    this.#earlier = page.next === null ? "none" : "more";
    const changes: Change[] = repliesToKnownTurns.map((reply) => ({ kind: "reply", reply }));
    if (added.length > 0) changes.unshift({ kind: "earlier", turns: added });
    if (queuedEarlier.length > 0) changes.push({ kind: "queue" });
    return changes;
  }

  /** Folds a welcome in; a snapshot (not resumed) replaces everything known before. */
  applyWelcome(welcome: WelcomeFrame): Change[] {
    this.models = welcome.models;
    this.participants = welcome.participants;
    this.participantCount = welcome.participant_count ?? welcome.participants.length;
    this.me = welcome.participant;
    if (welcome.resumed) return [{ kind: "presence" }];
    this.turns.length = 0;
    this.queue.length = 0;
    this.#turns.clear();
    this.#replies.clear();
    this.#byStream.clear();
    this.#running.clear();
    this.#orphans = [];
    this.#snapshots += 1;
    this.#earlier = "unknown";
    this.#oldest = welcome.messages[0]?.id ?? null;
    for (const message of welcome.messages) this.#addHistory(message);
    for (const running of welcome.streams) {
      const reply =
        this.#replies.get(running.message) ??
        this.#addReply(running.message, running.model, running.reply_to, 0, running.routed_from);
      if (!reply) continue;
      reply.model = running.model;
      // The running stream's text is newer than the message's last checkpoint.
      reply.text = running.text;
      reply.reasoning = running.reasoning ?? "";
      if (running.tool_calls) {
        const waiting = new Set(running.waiting ?? []);
        reply.toolCalls = running.tool_calls.map((call) =>
          waiting.has(call.call) ? { ...call, approval: "waiting" } : { ...call },
        );
      }
      reply.status = "streaming";
      reply.stream = running.stream;
      this.#byStream.set(running.stream, reply);
      this.#running.add(running.stream);
    }
    return [{ kind: "reset" }];
  }

  /** A whole list, as servers before `presence_diff` sent it. */
  applyPresence(participants: PresenceEntry[]): Change[] {
    this.participants = participants;
    this.participantCount = participants.length;
    return [{ kind: "presence" }];
  }

  /** Folds a `presence_diff` in: drops who left, adds or replaces who changed. */
  applyPresenceDiff(diff: PresenceDiffFrame): Change[] {
    const left = new Set(diff.left);
    const changed = new Map(diff.changed.map((entry) => [entry.id, entry]));
    const kept = this.participants
      .filter((entry) => !left.has(entry.id))
      .map((entry) => {
        const update = changed.get(entry.id);
        changed.delete(entry.id);
        return update ?? entry;
      });
    this.participants = [...kept, ...changed.values()];
    this.participantCount = diff.count;
    return [{ kind: "presence" }];
  }

  apply(event: RoomEvent): Change[] {
    switch (event.type) {
      case "message":
        return this.#onMessage(event);
      case "stream_start": {
        const reply = this.#addReply(
          event.message,
          event.model,
          event.reply_to,
          event.ts,
          event.routed_from,
        );
        if (!reply) return [];
        reply.routeReason = event.route_reason ?? null;
        reply.replaces = event.replaces ?? null;
        reply.stream = event.stream;
        reply.status = "streaming";
        this.#byStream.set(event.stream, reply);
        this.#running.add(event.stream);
        return [{ kind: "reply", reply }];
      }
      case "token": {
        const reply = this.#byStream.get(event.stream);
        if (!reply) return [];
        reply.text += event.text;
        reply.liveTokens += event.tokens ?? 1;
        reply.firstTokenAt ??= this.#now();
        return [{ kind: "reply", reply }];
      }
      case "reasoning": {
        const reply = this.#byStream.get(event.stream);
        if (!reply) return [];
        reply.reasoning += event.text;
        return [{ kind: "reply", reply }];
      }
      case "tool_call": {
        const reply = this.#byStream.get(event.stream);
        if (!reply) return [];
        const call = reply.toolCalls.find((c) => c.call === event.call);
        if (call) call.args = (call.args ?? "") + event.args;
        else reply.toolCalls.push({ call: event.call, name: event.name, args: event.args });
        return [{ kind: "reply", reply }];
      }
      case "unqueued":
        return this.#onUnqueued(event);
      case "stream_end": {
        const reply = this.#byStream.get(event.stream);
        this.#running.delete(event.stream);
        if (!reply) return [];
        // `length` is a complete reply that hit max_tokens; the reason keeps that apart.
        reply.status = event.reason === "length" ? "complete" : event.reason;
        reply.reason = event.reason;
        reply.usage = event.usage;
        reply.ttftMs = event.ttft_ms;
        reply.durationMs = event.duration_ms;
        reply.tokensPerS = event.tokens_per_s;
        reply.tokensPerSEstimated = event.tokens_per_s_estimated === true;
        reply.error = event.error ?? null;
        // A stream that ended while a call waited took the question with it.
        for (const call of reply.toolCalls) if (call.approval === "waiting") delete call.approval;
        return [{ kind: "reply", reply }];
      }
      case "model_switch": {
        const reply = this.#byStream.get(event.stream);
        if (!reply || reply.model === event.model) return [];
        reply.switches.push({ from: reply.model, to: event.model, reason: event.reason });
        reply.model = event.model;
        return [{ kind: "reply", reply }];
      }
      case "tool_result":
      case "tool_approval":
      case "tool_decision":
        return this.#onToolEvent(event);
    }
  }

  #onToolEvent(
    event: Extract<RoomEvent, { type: "tool_result" | "tool_approval" | "tool_decision" }>,
  ): Change[] {
    const reply = this.#byStream.get(event.stream);
    if (!reply) return [];
    let call = reply.toolCalls.find((c) => c.call === event.call);
    if (!call) {
      call = { call: event.call };
      reply.toolCalls.push(call);
    }
    if (event.type === "tool_result") {
      call.name ??= event.name;
      call.duration_ms = event.duration_ms;
      if (event.error) call.error = event.error;
      else call.result = event.result ?? "";
    } else if (event.type === "tool_approval") {
      call.name ??= event.name;
      call.args = event.args;
      call.approval = "waiting";
    } else {
      call.approval = event.allow ? "allowed" : "denied";
      call.decidedBy = event.by ?? null;
    }
    return [{ kind: "reply", reply }];
  }

  /** Tokens per second measured on this client while a reply streams. */
  liveRate(reply: Reply): number | null {
    if (reply.firstTokenAt === null || reply.liveTokens < 2) return null;
    const seconds = (this.#now() - reply.firstTokenAt) / 1000;
    return seconds > 0 ? (reply.liveTokens - 1) / seconds : null;
  }

  #onMessage(event: MessageFrame): Change[] {
    if (this.#turns.has(event.id)) return [];
    const queued = event.queued === true;
    const turn: Turn = {
      id: event.id,
      author: event.author,
      text: event.text,
      ts: event.ts,
      promptId: event.prompt_id,
      replies: [],
      queued,
      withdrawn: false,
    };
    this.#turns.set(turn.id, turn);
    if (queued) {
      this.queue.push(turn);
      return [{ kind: "queue" }];
    }
    this.turns.push(turn);
    return [{ kind: "turn", turn }];
  }

  /** Queued prompts started (they join the conversation) or never will (withdrawn). */
  #onUnqueued(event: UnqueuedFrame): Change[] {
    const changes: Change[] = [{ kind: "queue" }];
    for (const id of event.messages) {
      const at = this.queue.findIndex((turn) => turn.id === id);
      if (at < 0) continue;
      const [turn] = this.queue.splice(at, 1);
      if (!turn) continue;
      turn.queued = false;
      turn.withdrawn = event.reason !== "started";
      this.turns.push(turn);
      changes.push({ kind: "turn", turn });
    }
    return changes;
  }

  #addHistory(message: HistoryMessage): void {
    if (message.role !== "user") {
      this.#addHistoryReply(message);
      return;
    }
    const turn = this.#newTurn(message);
    (turn.queued ? this.queue : this.turns).push(turn);
  }

  /** A user message of history as a turn, known by id but not yet placed in `turns`. */
  #newTurn(message: HistoryMessage): Turn {
    const turn: Turn = {
      id: message.id,
      author: message.author ?? null,
      text: message.text,
      ts: message.ts,
      promptId: message.prompt_id ?? null,
      replies: [],
      queued: message.queued === true,
      withdrawn: message.withdrawn === true,
    };
    this.#turns.set(turn.id, turn);
    return turn;
  }

  /** An assistant message of history as a reply; one whose turn is unknown waits for it. */
  #addHistoryReply(message: HistoryMessage): Reply | null {
    if (!message.model || !message.reply_to) return null;
    const reply = this.#addReply(
      message.id,
      message.model,
      message.reply_to,
      message.ts,
      message.routed_from,
    );
    if (!reply) {
      this.#orphans.push(message);
      return null;
    }
    reply.text = message.text;
    reply.reasoning = message.reasoning ?? "";
    reply.status = message.status;
    reply.replaces = message.replaces ?? null;
    reply.usage = message.usage ?? null;
    reply.error = message.error ?? null;
    reply.toolCalls = message.tool_calls?.map((call) => ({ ...call })) ?? [];
    if (message.status !== "complete" && message.status !== "streaming") {
      reply.reason = message.status;
    }
    if (message.stream) {
      reply.stream = message.stream;
      this.#byStream.set(message.stream, reply);
    }
    return reply;
  }

  /**
   * The reply with this message id, made if new. Null when the user message it answers is not
   * known: history starts mid-conversation, so its oldest replies may have lost their prompt.
   */
  #addReply(
    id: string,
    model: string,
    replyTo: string,
    ts: number,
    routedFrom?: string,
  ): Reply | null {
    const known = this.#replies.get(id);
    if (known) return known;
    const turn = this.#turns.get(replyTo);
    if (!turn) return null;
    const reply: Reply = {
      id,
      model,
      lane: routedFrom ?? model,
      routedFrom: routedFrom ?? null,
      routeReason: null,
      switches: [],
      replyTo,
      replaces: null,
      stream: null,
      text: "",
      reasoning: "",
      status: "streaming",
      ts,
      reason: null,
      usage: null,
      ttftMs: null,
      durationMs: null,
      tokensPerS: null,
      tokensPerSEstimated: false,
      error: null,
      toolCalls: [],
      liveTokens: 0,
      firstTokenAt: null,
    };
    this.#replies.set(id, reply);
    turn.replies.push(reply);
    return reply;
  }
}
