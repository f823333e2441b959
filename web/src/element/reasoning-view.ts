/**
 * A reply's reasoning: a disclosure, closed by default, that holds the model's thinking apart
 * from its answer. The label says "Thinking…" while the model thinks and the length once it has
 * answered. The thinking is model output like the answer, so it is drawn by the same sanitising
 * markdown view, and only while the disclosure is open: a closed one costs nothing per token.
 */

import type { Reply } from "../client/room-state.js";
import { reasoningLabel, stillThinking } from "./format.js";
import { MarkdownView } from "./markdown.js";

export class ReasoningView {
  readonly element: HTMLDetailsElement;
  readonly #summary: HTMLElement;
  readonly #markdown: MarkdownView;
  #reply: Reply | null = null;
  #labelled: { text: string; thinking: boolean; label: string | null } = {
    text: "",
    thinking: false,
    label: null,
  };

  constructor(doc: Document) {
    this.element = doc.createElement("details");
    this.element.className = "reasoning";
    this.element.hidden = true;
    this.#summary = doc.createElement("summary");
    const body = doc.createElement("div");
    // Not `.md`: that names the answer; the stylesheet gives both the markdown look.
    body.className = "reasoning-text";
    this.#markdown = new MarkdownView(body);
    this.element.append(this.#summary, body);
    // Opened, it shows what came while it was closed at once, not at the next token.
    this.element.addEventListener("toggle", () => this.#draw());
  }

  update(reply: Reply): void {
    this.#reply = reply;
    const thinking = stillThinking(reply);
    // The label counts the whole text: worked out again only when the thinking or its state
    // changed, not at every token of the answer that follows it.
    if (reply.reasoning !== this.#labelled.text || thinking !== this.#labelled.thinking) {
      this.#labelled = { text: reply.reasoning, thinking, label: reasoningLabel(reply) };
    }
    const { label } = this.#labelled;
    this.element.hidden = label === null;
    if (label === null) return;
    this.element.dataset["thinking"] = String(thinking);
    if (this.#summary.textContent !== label) this.#summary.textContent = label;
    this.#draw();
  }

  #draw(): void {
    const reply = this.#reply;
    if (!reply || !this.element.open) return;
    // Done once the model answers: drawn whole once, then left alone while the answer streams.
    this.#markdown.update(reply.reasoning, !stillThinking(reply));
  }
}
