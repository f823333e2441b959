/**
 * Reconnect delays: exponential backoff with full jitter.
 *
 * Full jitter (a uniform draw between zero and the exponential ceiling) spreads out the clients
 * that a restarting server dropped all at once, so they do not come back in one wave.
 */

export interface BackoffOptions {
  /** Ceiling of the first delay, in milliseconds. */
  baseMs?: number;
  /** Largest ceiling, in milliseconds. */
  maxMs?: number;
  /** A source of uniform numbers in [0, 1); injectable so tests are deterministic. */
  random?: () => number;
}

export class Backoff {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor({ baseMs = 500, maxMs = 15_000, random = Math.random }: BackoffOptions = {}) {
    this.#baseMs = baseMs;
    this.#maxMs = maxMs;
    this.#random = random;
  }

  /** Failed attempts since the last {@link reset}. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The ceiling of the next delay. */
  ceiling(): number {
    return Math.min(this.#maxMs, this.#baseMs * 2 ** this.#attempt);
  }

  /** The delay before the next attempt; each call counts one more failed attempt. */
  next(): number {
    const delay = Math.floor(this.#random() * this.ceiling());
    this.#attempt += 1;
    return delay;
  }

  /** A uniform delay below `maxMs` that counts no attempt: for a retry that is expected to work. */
  jitter(maxMs: number): number {
    return Math.floor(this.#random() * maxMs);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
