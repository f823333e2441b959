/**
 * The turns of the conversation on screen: collects RoomState's changes as they come, then
 * draws them in one go, creating each turn's and reply's view once and updating it in place.
 */

import type { Change, Reply, RoomState, Turn } from "../client/room-state.js";
import { laneOrder } from "./lanes.js";
import { anchorAt, type ScrollAnchor } from "./log-scroll.js";
import { ReplyView, TurnView, type Versions } from "./views.js";

export interface ConversationActions {
  /** Run `model`'s reply to user message `replyTo` again. */
  regenerate(model: string, replyTo: string): void;
  /** Something on screen changed by itself (earlier versions shown): draw again. */
  changed(): void;
}

/** What a draw did that the rest of the element must follow. */
export interface Drawn {
  /** Everything was drawn anew. */
  reset: boolean;
  /** The lanes (one column per model) changed: see {@link Conversation.lanes}. */
  lanesChanged: boolean;
  /** The turn that was first before earlier ones went above it, and where it was. */
  anchor: ScrollAnchor | null;
}

export class Conversation {
  readonly element: HTMLElement;
  #resetPending = true;
  readonly #newTurns: Turn[] = [];
  readonly #earlierTurns: Turn[] = [];
  readonly #dirtyReplies = new Set<Reply>();
  #turnViews = new Map<string, TurnView>();
  #replyViews = new Map<string, ReplyView>();
  #lanes: string[] = [];
  /** Whether this page's participant may answer tool approvals (a member, not a viewer). */
  canApprove = true;
  /** Turn and model (`turn\nmodel`) whose earlier replies are shown, not only the newest. */
  readonly #expanded = new Set<string>();

  /** `element` holds the turns, and nothing else. */
  constructor(element: HTMLElement) {
    this.element = element;
  }

  /** Listens to the replies' buttons until `signal` aborts. */
  wire(signal: AbortSignal, actions: ConversationActions): void {
    this.element.addEventListener("click", (event) => this.#onClick(event, actions), { signal });
  }

  #onClick(event: Event, actions: ConversationActions): void {
    if (!(event.target instanceof Element)) return;
    const button = event.target.closest<HTMLButtonElement>("button[data-action]");
    const model = button?.dataset["model"];
    const replyTo = button?.dataset["replyTo"];
    if (!button || !model || !replyTo) return;
    if (button.dataset["action"] === "regenerate") {
      actions.regenerate(model, replyTo);
      return;
    }
    const key = `${replyTo}\n${model}`;
    if (!this.#expanded.delete(key)) this.#expanded.add(key);
    for (const reply of this.#siblings(replyTo, model)) this.#dirtyReplies.add(reply);
    actions.changed();
  }

  /** `model`'s replies to user message `turnId`, oldest first. */
  #siblings(turnId: string, model: string): Reply[] {
    const turn = this.#turnViews.get(turnId)?.turn;
    return turn ? turn.replies.filter((reply) => reply.model === model) : [];
  }

  #versions(reply: Reply): Versions {
    const siblings = this.#siblings(reply.replyTo, reply.model);
    return {
      newest: siblings.at(-1) === reply || siblings.length === 0,
      older: Math.max(0, siblings.length - 1),
      expanded: this.#expanded.has(`${reply.replyTo}\n${reply.model}`),
    };
  }
  /** The models shown as columns, in order, as of the last draw. */
  get lanes(): readonly string[] {
    return this.#lanes;
  }

  /** Draws everything anew next time: a new RoomState replaced the old one. */
  reset(): void {
    this.#resetPending = true;
  }

  track(changes: Change[]): void {
    for (const change of changes) {
      if (change.kind === "reset") this.#resetPending = true;
      else if (change.kind === "turn") this.#newTurns.push(change.turn);
      else if (change.kind === "earlier") this.#earlierTurns.unshift(...change.turns);
      else if (change.kind === "reply") this.#dirtyReplies.add(change.reply);
    }
  }

  /** Draws what changed since the last draw; `selected` are the models prompts go to. */
  draw(state: RoomState, selected: string[]): Drawn {
    const reset = this.#resetPending;
    if (reset) this.#redrawAll(state);
    this.#appendNew(state);
    const anchor = this.#prependEarlier(state);
    const lanesChanged = this.#updateLanes(state, selected);
    for (const reply of state.running()) this.#dirtyReplies.add(reply);
    this.#updateReplies(state);
    return { reset, lanesChanged, anchor };
  }

  #redrawAll(state: RoomState): void {
    this.#resetPending = false;
    this.#turnViews = new Map();
    this.#replyViews = new Map();
    this.#newTurns.length = 0;
    this.#earlierTurns.length = 0;
    this.element.replaceChildren();
    for (const turn of state.turns) this.#newTurns.push(turn);
    this.#markAllReplies(state);
  }

  #appendNew(state: RoomState): void {
    for (const turn of this.#newTurns.splice(0)) {
      if (this.#turnViews.has(turn.id)) continue;
      this.element.append(this.#turnView(state, turn).element);
    }
  }

  /** Puts the views of earlier turns above the others; returns where the first one was. */
  #prependEarlier(state: RoomState): ScrollAnchor | null {
    if (this.#earlierTurns.length === 0) return null;
    const anchor = anchorAt(this.element.firstElementChild);
    const views: HTMLElement[] = [];
    for (const turn of this.#earlierTurns.splice(0)) {
      if (this.#turnViews.has(turn.id)) continue;
      views.push(this.#turnView(state, turn).element);
      for (const reply of turn.replies) this.#dirtyReplies.add(reply);
    }
    this.element.prepend(...views);
    return anchor;
  }

  #turnView(state: RoomState, turn: Turn): TurnView {
    const view = new TurnView(this.element.ownerDocument, turn, state.me?.id ?? null);
    this.#turnViews.set(turn.id, view);
    return view;
  }

  #updateLanes(state: RoomState, selected: string[]): boolean {
    const lanes = laneOrder(selected, state.models, state.turns);
    if (lanes.join("\n") === this.#lanes.join("\n")) return false;
    this.#lanes = lanes;
    // A new column order moves every reply.
    this.#markAllReplies(state);
    return true;
  }

  #markAllReplies(state: RoomState): void {
    for (const turn of state.turns) for (const reply of turn.replies) this.#dirtyReplies.add(reply);
  }

  #updateReplies(state: RoomState): void {
    // A new reply (a regenerate) changes which of its model's replies to that prompt shows.
    for (const reply of [...this.#dirtyReplies]) {
      if (this.#replyViews.has(reply.id)) continue;
      for (const sibling of this.#siblings(reply.replyTo, reply.model)) {
        this.#dirtyReplies.add(sibling);
      }
    }
    for (const reply of this.#dirtyReplies) {
      this.#replyView(reply)?.update(
        state.models,
        this.#column(reply),
        state.liveRate(reply),
        this.#versions(reply),
      );
    }
    this.#dirtyReplies.clear();
  }

  /** The reply's view, made on first need; none while its turn has no view (yet). */
  #replyView(reply: Reply): ReplyView | null {
    const existing = this.#replyViews.get(reply.id);
    if (existing) return existing;
    const turnView = this.#turnViews.get(reply.replyTo);
    if (!turnView) return null;
    const view = new ReplyView(this.element.ownerDocument, reply, () => this.canApprove);
    this.#replyViews.set(reply.id, view);
    turnView.replies.append(view.element);
    return view;
  }

  #column(reply: Reply): number {
    return this.#lanes.indexOf(reply.lane) + 1 || this.#lanes.length + 1;
  }
}
