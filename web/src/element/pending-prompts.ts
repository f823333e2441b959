/**
 * Our prompt that is on its way: sent, and neither echoed nor refused by the server yet (a
 * prompt sent while replies stream waits in the room's queue, which the server keeps). No DOM.
 */

import type { Turn } from "../client/room-state.js";

export class PendingPrompts {
  #inflight: string | null = null;
  #inflightText = "";

  /** Whether a prompt of ours is on its way. */
  get awaiting(): boolean {
    return this.#inflight !== null;
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

  /** Forgets it: a new connection starts from the server's snapshot. */
  clear(): void {
    this.#inflight = null;
  }
}
