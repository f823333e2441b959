/**
 * Which layout the element's own width gives it. The stylesheet decides, by container queries
 * on the element's box (`--_layout: tabs` below the width where two lanes fit side by side);
 * this reads that decision whenever the box changes size, for the parts drawn by script.
 */

export type LaneLayout = "columns" | "tabs";

export class LayoutWatch {
  readonly #root: HTMLElement;
  readonly #changed: (layout: LaneLayout) => void;
  #observer: ResizeObserver | null = null;
  #layout: LaneLayout = "columns";

  /** `root` is styled by the container queries; `changed` hears each new layout. */
  constructor(root: HTMLElement, changed: (layout: LaneLayout) => void) {
    this.#root = root;
    this.#changed = changed;
  }

  get layout(): LaneLayout {
    return this.#layout;
  }

  start(): void {
    this.stop();
    this.#observer = new ResizeObserver(() => this.#check());
    this.#observer.observe(this.#root);
  }

  stop(): void {
    this.#observer?.disconnect();
    this.#observer = null;
  }

  #check(): void {
    const wanted = getComputedStyle(this.#root).getPropertyValue("--_layout").trim();
    const layout: LaneLayout = wanted === "tabs" ? "tabs" : "columns";
    if (layout === this.#layout) return;
    this.#layout = layout;
    this.#root.dataset["layout"] = layout;
    this.#changed(layout);
  }
}
