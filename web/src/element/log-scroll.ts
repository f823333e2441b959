/**
 * The conversation log's scrolling: it follows new text while the reader is at the bottom
 * (with a "Jump to latest" button when not), and keeps what the reader sees in place when
 * earlier history is put above it.
 */

import { el } from "./views.js";

/** Distance from the bottom, in pixels, within which the log keeps following new text. */
const STICK_PX = 48;

/** An element and where it was on screen, to scroll it back there after the DOM changed. */
export interface ScrollAnchor {
  element: Element;
  top: number;
}

export function anchorAt(element: Element | null): ScrollAnchor | null {
  return element ? { element, top: element.getBoundingClientRect().top } : null;
}

export class LogScroll {
  readonly jump: HTMLButtonElement;
  readonly #log: HTMLElement;
  #stick = true;

  constructor(log: HTMLElement) {
    this.#log = log;
    this.jump = el(log.ownerDocument, "button", "jump", "Jump to latest ↓");
    this.jump.type = "button";
    this.jump.hidden = true;
  }

  wire(signal: AbortSignal): void {
    this.#log.addEventListener(
      "scroll",
      () => {
        this.#stick = this.#nearBottom();
        this.jump.hidden = this.#stick;
      },
      { signal, passive: true },
    );
    this.jump.addEventListener(
      "click",
      () => {
        this.#stick = true;
        this.follow();
        this.#log.focus();
      },
      { signal },
    );
  }

  /** Scrolls so that `anchor` is where it was: what someone was reading does not move. */
  keepInPlace(anchor: ScrollAnchor): void {
    this.#log.scrollTop += anchor.element.getBoundingClientRect().top - anchor.top;
    this.#stick = this.#nearBottom();
  }

  /** Scrolls to the newest text if the reader was there; otherwise offers the jump button. */
  follow(): void {
    if (this.#stick) {
      this.#log.scrollTop = this.#log.scrollHeight;
      this.jump.hidden = true;
    } else {
      this.jump.hidden = false;
    }
  }

  #nearBottom(): boolean {
    const { scrollTop, scrollHeight, clientHeight } = this.#log;
    return scrollHeight - scrollTop - clientHeight < STICK_PX;
  }
}
