/**
 * Our prompts that are not in the conversation yet: the one queued while replies stream (sent
 * when they end), and the one sent that the server has neither echoed nor refused. No DOM.
 */

import type { Turn } from "../client/room-state.js";

export class PendingPrompts {
  #queued: string | null = null;
  #inflight: string | null = null;
  #inflightText = "";

  /** The prompt waiting for the replies to end; null when there is none. */
  get queued(): string | null {
    return this.#queued;
  }

  /** Whether a prompt of ours is on its way: until then, a new one is queued. */
  get awaiting(): boolean {
    return this.#inflight !== null;
  }

  queue(text: string): void {
    this.#queued = text;
  }

  discardQueued(): void {
    this.#queued = null;
  }

  /** Takes the queued prompt out, to send it. */
  takeQueued(): string | null {
    const text = this.#queued;
    this.#queued = null;
    return text;
  }

  /** The prompt with this id (the client's) and text went out. */
  sent(id: string, text: string): void {
    this.#inflight = id;
    this.#inflightText = text;
  }

  /** The server echoed a message with this prompt id: if ours, it is no longer on its way. */
  echoed(promptId: string | undefined): void {
    if (promptId === this.#inflight) this.#inflight = null;
  }

  /** A snapshot may already hold our prompt: the server took it before the connection dropped. */
  seenIn(turns: readonly Turn[]): void {
    if (turns.some((turn) => turn.promptId !== null && turn.promptId === this.#inflight)) {
      this.#inflight = null;
    }
  }

  /** The server refused the frame with id `ref`; returns our prompt's text if it was that. */
  refused(ref: string | undefined): string | null {
    if (!ref || ref !== this.#inflight) return null;
    this.#inflight = null;
    return this.#inflightText;
  }

  /** Forgets both: a new connection starts from the server's snapshot. */
  clear(): void {
    this.#queued = this.#inflight = null;
  }
}
