/**
 * Tells the room whether this person is typing: on at the first character, off when the box
 * is emptied, a prompt goes out, or nothing has been typed for a while.
 */

/** A participant who stops typing for this long is shown as not typing any more. */
const TYPING_IDLE_MS = 3000;

export class TypingSignal {
  readonly #tell: (typing: boolean) => void;
  #typing = false;
  #idleTimer: ReturnType<typeof setTimeout> | null = null;

  /** `tell` sends the state to the room (through whichever client is current). */
  constructor(tell: (typing: boolean) => void) {
    this.#tell = tell;
  }

  /** The box's text changed. */
  typed(text: string): void {
    if (!text.trim()) {
      this.stop();
      return;
    }
    if (!this.#typing) {
      this.#typing = true;
      this.#tell(true);
    }
    this.#clearTimer();
    this.#idleTimer = setTimeout(() => this.stop(), TYPING_IDLE_MS);
  }

  stop(): void {
    this.#clearTimer();
    if (!this.#typing) return;
    this.#typing = false;
    this.#tell(false);
  }

  /** Drops the idle timer without telling anyone (the element left the document). */
  dispose(): void {
    this.#clearTimer();
  }

  #clearTimer(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }
}
