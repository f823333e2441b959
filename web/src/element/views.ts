/** The DOM of one turn and of one reply, each updated in place from RoomState's records. */

import type { ModelInfo } from "../client/frames.js";
import type { Reply, Turn } from "../client/room-state.js";
import { reasonText, statsLine } from "./format.js";
import { MarkdownView } from "./markdown.js";
import { ReasoningView } from "./reasoning-view.js";
import { ToolCallsView } from "./tool-calls.js";

export function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The colour of a model's lane: by its place in the server's list, the same on every page. */
export function laneColor(model: string, models: readonly ModelInfo[]): string {
  let index = models.findIndex((info) => info.id === model);
  if (index < 0) index = [...model].reduce((sum, c) => sum + (c.codePointAt(0) ?? 0), 0);
  return `var(--_lane-${(index % 6) + 1})`;
}

export function modelLabel(model: string, models: readonly ModelInfo[]): string {
  return models.find((info) => info.id === model)?.label ?? model;
}

/** Who wrote a reply: its model, after its router's name when routed ("Auto → Fast"). */
export function replyLabel(reply: Reply, models: readonly ModelInfo[]): string {
  const model = modelLabel(reply.model, models);
  return reply.routedFrom ? `${modelLabel(reply.routedFrom, models)} → ${model}` : model;
}

/** Why a routed reply's model answers it: the router's reason, then each switch; else "". */
export function routeTitle(reply: Reply): string {
  const lines = reply.routeReason ? [`Chosen: ${reply.routeReason}`] : [];
  for (const change of reply.switches) lines.push(`Switched to ${change.to}: ${change.reason}`);
  return lines.join("\n");
}

/** Where a reply stands among its model's replies to one prompt (several after regenerates). */
export interface Versions {
  /** It is the newest: the one shown, and the one Regenerate runs again. */
  newest: boolean;
  /** How many replies of the model to that prompt came before the newest. */
  older: number;
  /** The older ones are shown too. */
  expanded: boolean;
}

export class ReplyView {
  readonly element: HTMLElement;
  readonly #label: HTMLElement;
  readonly #state: HTMLElement;
  readonly #markdown: MarkdownView;
  readonly #reasoning: ReasoningView;
  readonly #tools: ToolCallsView;
  readonly #stats: HTMLElement;
  readonly #reason: HTMLElement;
  readonly #regenerate: HTMLButtonElement;
  readonly #versions: HTMLButtonElement;

  /** `canApprove` says whether this page's participant may answer a tool approval. */
  constructor(
    doc: Document,
    readonly reply: Reply,
    readonly canApprove: () => boolean = () => true,
  ) {
    this.element = el(doc, "article", "reply");
    this.element.dataset["model"] = reply.lane;
    this.element.dataset["message"] = reply.id;
    const head = el(doc, "header", "reply-head");
    this.#label = el(doc, "span", "model");
    this.#state = el(doc, "span", "reply-state");
    head.append(this.#label, this.#state);
    const body = el(doc, "div", "md");
    this.#markdown = new MarkdownView(body);
    // Thinking comes before the answer, so its disclosure stands above it.
    this.#reasoning = new ReasoningView(doc);
    const tools = el(doc, "div", "tools");
    this.#tools = new ToolCallsView(tools);
    this.#stats = el(doc, "div", "stats");
    this.#reason = el(doc, "p", "reason");
    this.#regenerate = actionButton(doc, "regenerate", "Regenerate");
    this.#regenerate.dataset["model"] = reply.model;
    this.#regenerate.dataset["replyTo"] = reply.replyTo;
    this.#versions = actionButton(doc, "versions", "");
    this.#versions.dataset["model"] = reply.model;
    this.#versions.dataset["replyTo"] = reply.replyTo;
    const actions = el(doc, "div", "reply-actions");
    actions.append(this.#regenerate, this.#versions);
    this.element.append(
      head,
      this.#reasoning.element,
      body,
      tools,
      this.#stats,
      this.#reason,
      actions,
    );
  }

  update(
    models: readonly ModelInfo[],
    column: number,
    liveRate: number | null,
    versions: Versions = { newest: true, older: 0, expanded: false },
  ): void {
    const { reply } = this;
    const streaming = reply.status === "streaming";
    const label = replyLabel(reply, models);
    this.element.style.setProperty("--lane-color", laneColor(reply.lane, models));
    this.element.style.gridColumn = String(column);
    this.element.dataset["status"] = reply.status;
    if (reply.stream) this.element.dataset["stream"] = reply.stream;
    // aria-busy tells assistive technology to wait for the whole reply instead of reading
    // a half-written one.
    this.element.setAttribute("aria-busy", String(streaming));
    this.element.setAttribute("aria-label", `${label} reply${streaming ? ", streaming" : ""}`);
    this.#label.textContent = label;
    this.#label.title = routeTitle(reply);
    this.#state.textContent = streaming ? "streaming…" : "";
    this.#reasoning.update(reply);
    this.#markdown.update(reply.text, !streaming);
    this.#tools.render(reply.toolCalls, streaming, this.canApprove());
    this.#stats.textContent = statsLine(reply, liveRate);
    this.#reason.textContent = reasonText(reply) ?? "";
    this.#showVersions(label, streaming, versions);
  }

  /** An older version shows only when asked for; the newest offers Regenerate and the others. */
  #showVersions(label: string, streaming: boolean, versions: Versions): void {
    this.element.dataset["version"] = versions.newest ? "newest" : "older";
    this.element.hidden = !versions.newest && !versions.expanded;
    this.#regenerate.hidden = !versions.newest || streaming;
    this.#regenerate.setAttribute("aria-label", `Regenerate ${label}'s reply`);
    this.#versions.hidden = !versions.newest || versions.older === 0;
    this.#versions.setAttribute("aria-expanded", String(versions.expanded));
    this.#versions.textContent = versions.expanded
      ? "Hide earlier versions"
      : `Earlier versions (${versions.older})`;
  }

}

function actionButton(doc: Document, action: string, text: string): HTMLButtonElement {
  const node = el(doc, "button", `reply-${action}`, text);
  node.type = "button";
  node.dataset["action"] = action;
  node.hidden = true;
  return node;
}

export class TurnView {
  readonly element: HTMLElement;
  readonly replies: HTMLElement;

  constructor(
    doc: Document,
    readonly turn: Turn,
    me: string | null,
  ) {
    this.element = el(doc, "section", "turn");
    this.element.dataset["message"] = turn.id;
    const prompt = el(doc, "div", "prompt");
    const author = turn.author?.name ?? "Someone";
    const who = el(
      doc,
      "span",
      "who",
      turn.author && turn.author.id === me ? `${author} (you)` : author,
    );
    prompt.append(who, doc.createTextNode(turn.text));
    if (turn.withdrawn) {
      // It never ran: withdrawn by its author, cleared by a Stop all, or dropped at a restart.
      this.element.dataset["withdrawn"] = "true";
      prompt.append(el(doc, "span", "withdrawn-note", "Withdrawn: not sent to the models."));
    }
    this.element.setAttribute("aria-label", `${author} asked`);
    this.replies = el(doc, "div", "grid replies");
    this.element.append(prompt, this.replies);
  }
}
