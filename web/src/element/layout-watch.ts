/**
 * Which layout the element's own width gives it: lanes side by side, or as tabs. Two things
 * decide, both measured on the element's box, never the window:
 *
 * - the stylesheet's container query (`--_layout: tabs` below 35rem, where two lanes no longer
 *   fit and the rest of the element compacts too);
 * - a probe as wide as the lanes need side by side (`--lanes` columns of `--rt-lane-min-width`
 *   and their gaps): three or more lanes may not fit in a box wider than that.
 *
 * It reads them whenever the box, the lanes' room or the probe change size.
 */

export type LaneLayout = "columns" | "tabs";

export interface LayoutParts {
  /** Styled by the container queries. */
  root: HTMLElement;
  /** The lane heads: their width is the room the lanes have. */
  lanes: HTMLElement;
  /** As wide as the lanes need to be side by side. */
  probe: HTMLElement;
}

export class LayoutWatch {
  readonly #parts: LayoutParts;
  readonly #changed: (layout: LaneLayout) => void;
  #observer: ResizeObserver | null = null;
  #layout: LaneLayout = "columns";

  /** `changed` hears each new layout. */
  constructor(parts: LayoutParts, changed: (layout: LaneLayout) => void) {
    this.#parts = parts;
    this.#changed = changed;
  }

  start(): void {
    this.stop();
    this.#observer = new ResizeObserver(() => this.#check());
    const { root, lanes, probe } = this.#parts;
    for (const part of [root, lanes, probe]) this.#observer.observe(part);
  }

  stop(): void {
    this.#observer?.disconnect();
    this.#observer = null;
  }

  #check(): void {
    const { root, lanes, probe } = this.#parts;
    const narrow = getComputedStyle(root).getPropertyValue("--_layout").trim() === "tabs";
    const crowded = lanes.clientWidth > 0 && probe.offsetWidth > lanes.clientWidth + 0.5;
    const layout: LaneLayout = narrow || crowded ? "tabs" : "columns";
    if (layout === this.#layout) return;
    this.#layout = layout;
    root.dataset["layout"] = layout;
    this.#changed(layout);
  }
}
