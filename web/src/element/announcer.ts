/**
 * The live region a screen reader reads. Token text is not live: a screen reader would read
 * every token. This region says when a model starts and stops instead; the finished reply is
 * there to read.
 */

import { el } from "./views.js";

export class Announcer {
  readonly element: HTMLElement;
  readonly #pending: string[] = [];

  constructor(doc: Document) {
    this.element = el(doc, "div", "sr-only");
    this.element.setAttribute("aria-live", "polite");
  }

  /** Queues words; those queued before the next {@link flush} are said together, once. */
  say(text: string): void {
    this.#pending.push(text);
  }

  flush(): void {
    if (this.#pending.length > 0) this.element.textContent = this.#pending.splice(0).join(" ");
  }
}
