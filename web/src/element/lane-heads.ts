/** The heads of the lanes: each model's label, whether it streams, and its Stop button. */

import type { ModelInfo } from "../client/frames.js";
import type { Reply } from "../client/room-state.js";
import { el, laneColor, modelLabel } from "./views.js";

export class LaneHeads {
  readonly element: HTMLElement;

  constructor(doc: Document) {
    this.element = el(doc, "div", "grid lanes");
    this.element.setAttribute("part", "lanes");
    this.element.setAttribute("aria-label", "Models");
    this.element.setAttribute("role", "group");
  }

  /** Calls `cancel` with the model whose Stop button was pressed. */
  wire(signal: AbortSignal, cancel: (model: string) => void): void {
    this.element.addEventListener(
      "click",
      (event) => {
        const button = event.target instanceof Element ? event.target.closest("button") : null;
        if (button?.dataset["action"] === "cancel" && button.dataset["model"]) {
          cancel(button.dataset["model"]);
        }
      },
      { signal },
    );
  }

  /** Draws one head per lane, anew: labels and colours come with the server's models. */
  render(lanes: readonly string[], models: readonly ModelInfo[]): void {
    this.element.replaceChildren(...lanes.map((model) => this.#head(model, models)));
  }

  /** Marks the lanes whose model is streaming; only their Stop buttons can be pressed. */
  showStreaming(running: readonly Reply[]): void {
    for (const lane of this.element.children) {
      if (!(lane instanceof HTMLElement)) continue;
      const model = lane.dataset["model"] ?? "";
      const streaming = running.some((reply) => reply.model === model);
      lane.toggleAttribute("data-streaming", streaming);
      const state = lane.querySelector(".lane-state");
      if (state) state.textContent = streaming ? "streaming" : "idle";
      const stop = lane.querySelector("button");
      if (stop) stop.disabled = !streaming;
    }
  }

  #head(model: string, models: readonly ModelInfo[]): HTMLElement {
    const doc = this.element.ownerDocument;
    const label = modelLabel(model, models);
    const lane = el(doc, "div", "lane");
    lane.dataset["model"] = model;
    lane.style.setProperty("--lane-color", laneColor(model, models));
    const stop = el(doc, "button", "cancel", "Stop");
    stop.type = "button";
    stop.setAttribute("aria-label", `Stop ${label}`);
    stop.dataset["action"] = "cancel";
    stop.dataset["model"] = model;
    lane.append(el(doc, "span", "lane-label", label), el(doc, "span", "lane-state"), stop);
    return lane;
  }
}
