/** The bar above the conversation: the connection's status, the room, and who is in it. */

import type { ConnectionInfo } from "../client/client.js";
import type { PresenceEntry } from "../client/frames.js";
import { el } from "./views.js";
import { statusText } from "./wording.js";

export class StatusBar {
  readonly element: HTMLElement;
  readonly #status: HTMLElement;
  readonly #room: HTMLElement;
  readonly #people: HTMLUListElement;
  /** Who is here, as a count: what a narrow element shows instead of the list. */
  readonly #count: HTMLElement;

  constructor(doc: Document) {
    this.element = el(doc, "div", "bar");
    this.element.setAttribute("part", "bar");
    this.#status = el(doc, "span", "status", "Connecting…");
    this.#status.setAttribute("role", "status");
    this.#room = el(doc, "span", "room");
    this.#room.setAttribute("title", "Room");
    this.#people = el(doc, "ul", "people");
    this.#count = el(doc, "span", "people-count");
    this.element.append(this.#status, this.#room, this.#people, this.#count);
  }

  renderConnection(info: ConnectionInfo, room: string): void {
    this.#status.dataset["state"] = info.state;
    // A refused token is a state of its own: styles and tests can tell it from a plain close.
    if (info.denied) this.#status.dataset["denied"] = info.denied;
    else delete this.#status.dataset["denied"];
    this.#status.textContent = statusText(info);
    this.#room.textContent = room;
  }

  /**
   * `me` is this person's participant id, marked "(you)" and never shown as typing. `count` is
   * everyone connected: a big room lists only a few, and the rest are counted.
   */
  renderPeople(
    participants: readonly PresenceEntry[],
    me: string | undefined,
    count = participants.length,
  ): void {
    const doc = this.element.ownerDocument;
    const items = participants.map((person) => {
      const name = person.id === me ? `${person.name} (you)` : person.name;
      const item = el(doc, "li", undefined, name);
      if (person.id === me) item.dataset["me"] = "";
      if (person.typing && person.id !== me) item.dataset["typing"] = "";
      return item;
    });
    const unlisted = count - participants.length;
    if (unlisted > 0) {
      const more = el(doc, "li", undefined, `+${unlisted.toLocaleString("en")} more`);
      more.dataset["more"] = "";
      items.push(more);
    }
    this.#people.replaceChildren(...items);
    const everyone = Math.max(count, participants.length);
    const others = everyone - 1;
    this.#people.setAttribute(
      "aria-label",
      `In this room: ${others > 0 ? `you and ${others} more` : "only you"}`,
    );
    const typing = participants.some((person) => person.typing && person.id !== me);
    this.#count.textContent = `${everyone.toLocaleString("en")} here${typing ? " · typing…" : ""}`;
    this.#count.toggleAttribute("data-typing", typing);
  }
}
