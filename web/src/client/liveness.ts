/**
 * Liveness: notices a connection that died without closing.
 *
 * A connection cut without a FIN (a laptop that slept, a NAT that forgot it) looks open until
 * the operating system gives up, which can take many minutes, and browsers expose neither
 * WebSocket ping/pong nor the SSE heartbeat comments. So the client asks itself: a protocol
 * `ping` every `intervalMs`, and when nothing at all arrives within `timeoutMs` after one, the
 * connection is taken for dead. Any frame counts as an answer, not just the `pong`: a server
 * busy streaming tokens is plainly alive, even if the `pong` is queued behind them.
 */

import type { Clock } from "./client.js";

export interface LivenessOptions {
  /** Milliseconds between pings while connected; 0 turns the check off. */
  intervalMs: number;
  /** Milliseconds of silence after a ping before the connection counts as dead. */
  timeoutMs: number;
  clock: Clock;
  /** Sends one ping. */
  ping(): void;
  /** Called once when the connection is found dead; the owner closes it. */
  dead(): void;
}

export class Liveness {
  readonly #options: LivenessOptions;
  #pingTimer: unknown = null;
  #deadline: unknown = null;

  constructor(options: LivenessOptions) {
    this.#options = options;
  }

  /** Starts checking a connection that has just opened; restarts if it was running. */
  start(): void {
    this.stop();
    if (this.#options.intervalMs > 0) this.#schedulePing();
  }

  /** A frame arrived: the connection is alive. */
  heard(): void {
    if (this.#deadline === null) return;
    this.#options.clock.clearTimeout(this.#deadline);
    this.#deadline = null;
  }

  stop(): void {
    const { clock } = this.#options;
    if (this.#pingTimer !== null) clock.clearTimeout(this.#pingTimer);
    if (this.#deadline !== null) clock.clearTimeout(this.#deadline);
    this.#pingTimer = this.#deadline = null;
  }

  #schedulePing(): void {
    const { clock, intervalMs, timeoutMs } = this.#options;
    this.#pingTimer = clock.setTimeout(() => {
      this.#pingTimer = null;
      // An unanswered earlier ping keeps its deadline: a later ping must not push it back.
      this.#deadline ??= clock.setTimeout(() => {
        this.#deadline = null;
        this.stop();
        this.#options.dead();
      }, timeoutMs);
      this.#schedulePing();
      this.#options.ping();
    }, intervalMs);
  }
}
