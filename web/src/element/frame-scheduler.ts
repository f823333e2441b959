/**
 * Runs a drawing callback at most once per animation frame, however often it is asked for:
 * frames can arrive faster than the screen refreshes, and the DOM need only follow each once.
 */
export class FrameScheduler {
  readonly #draw: () => void;
  #frame: number | null = null;

  constructor(draw: () => void) {
    this.#draw = draw;
  }

  /** Asks for the callback to run in the next animation frame (once, if asked again). */
  request(): void {
    if (this.#frame !== null) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = null;
      this.#draw();
    });
  }

  /** Drops a requested run that has not happened yet. */
  cancel(): void {
    if (this.#frame !== null) cancelAnimationFrame(this.#frame);
    this.#frame = null;
  }
}
