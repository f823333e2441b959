/**
 * The "Load earlier messages" control at the top of the conversation: a button while the room
 * holds more, a line saying so once its start is shown, and the error of a failed load.
 */

import type { EarlierStatus } from "../client/room-state.js";
import { el } from "./views.js";

export interface EarlierViewState {
  status: EarlierStatus;
  loading: boolean;
  error: string | null;
  /** Whether this person has loaded earlier messages since the last snapshot. */
  loadedAny: boolean;
  /** Whether there is any conversation to be earlier than. */
  hasTurns: boolean;
}

export class EarlierView {
  readonly element: HTMLElement;
  readonly button: HTMLButtonElement;
  readonly #start: HTMLElement;
  readonly #error: HTMLElement;

  constructor(doc: Document, controls: string) {
    this.element = el(doc, "div", "earlier");
    this.element.setAttribute("part", "earlier");
    this.button = el(doc, "button", "earlier-button", "Load earlier messages");
    this.button.type = "button";
    this.button.dataset["action"] = "earlier";
    this.button.setAttribute("aria-controls", controls);
    this.button.hidden = true;
    this.#start = el(doc, "p", "earlier-start", "This is the start of the conversation.");
    this.#start.hidden = true;
    this.#error = el(doc, "p", "earlier-error");
    // An alert, so that a failure is heard by someone who pressed the button from the keyboard.
    this.#error.setAttribute("role", "alert");
    this.element.append(this.button, this.#start, this.#error);
  }

  render({ status, loading, error, loadedAny, hasTurns }: EarlierViewState): void {
    this.button.hidden = status !== "more";
    this.button.textContent = loading ? "Loading earlier messages…" : "Load earlier messages";
    // aria-disabled rather than disabled: a disabled button would drop the keyboard focus.
    this.button.setAttribute("aria-disabled", String(loading));
    this.#start.hidden = !(status === "none" && loadedAny && hasTurns);
    this.#error.textContent = error ? `Could not load earlier messages: ${error}.` : "";
    this.element.hidden = this.button.hidden && this.#start.hidden && !error;
  }
}
