/**
 * The room's queue, as everyone in the room sees it: the prompts waiting for the running
 * replies to end, in the order they will run, and whose each is. A participant's own carry a
 * Withdraw button. Drawn from RoomState.queue; what Withdraw does is the element's.
 */

import type { Turn } from "../client/room-state.js";
import { el } from "./views.js";

export interface QueueActions {
  /** Withdraw the queued prompt with this user message id. */
  withdraw(message: string): void;
}

export class QueueView {
  readonly element: HTMLElement;
  readonly #list: HTMLOListElement;
  /** What is on screen, to skip drawing the same queue again. */
  #shown = "";

  constructor(doc: Document) {
    this.element = el(doc, "section", "room-queue");
    this.element.setAttribute("part", "queue");
    this.element.setAttribute("aria-labelledby", "rt-queue-title");
    const title = el(doc, "h2", "room-queue-title", "Waiting to run");
    title.id = "rt-queue-title";
    this.#list = el(doc, "ol", "room-queue-list");
    this.element.append(title, this.#list);
    this.element.hidden = true;
  }

  /** Listens until `signal` aborts. */
  wire(signal: AbortSignal, actions: QueueActions): void {
    this.#list.addEventListener(
      "click",
      (event) => {
        const target = event.target;
        if (!(target instanceof Element)) return;
        const withdraw = target.closest<HTMLButtonElement>("button[data-action=withdraw]");
        const message = withdraw?.dataset["message"];
        if (withdraw && message) {
          withdraw.disabled = true;
          actions.withdraw(message);
        }
      },
      { signal },
    );
  }

  /** Shows `queue` (oldest first); `me` is this participant's id, whose prompts it may withdraw. */
  render(queue: readonly Turn[], me: string | null): void {
    const key = JSON.stringify([me, queue.map((turn) => turn.id)]);
    if (key === this.#shown) return;
    this.#shown = key;
    this.element.hidden = queue.length === 0;
    const doc = this.element.ownerDocument;
    this.#list.replaceChildren(...queue.map((turn) => entry(doc, turn, me)));
  }
}

function entry(doc: Document, turn: Turn, me: string | null): HTMLLIElement {
  const item = el(doc, "li", "room-queue-entry");
  item.dataset["message"] = turn.id;
  const mine = turn.author !== null && turn.author.id === me;
  const author = turn.author?.name ?? "Someone";
  item.dataset["mine"] = String(mine);
  const who = el(doc, "span", "who", mine ? `${author} (you)` : author);
  item.append(who, el(doc, "q", undefined, turn.text));
  if (mine) {
    const withdraw = el(doc, "button", "withdraw", "Withdraw");
    withdraw.type = "button";
    withdraw.dataset["action"] = "withdraw";
    withdraw.dataset["message"] = turn.id;
    withdraw.setAttribute("aria-label", `Withdraw your queued prompt: ${turn.text.slice(0, 80)}`);
    item.append(withdraw);
  }
  return item;
}
