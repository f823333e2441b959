/**
 * The heads of the lanes: each model's label, its latest reply's status, and its Stop button.
 * In a narrow element they are also its tabs: pressing one shows that lane's replies.
 */

import type { ModelInfo } from "../client/frames.js";
import type { Reply } from "../client/room-state.js";
import { icon } from "./icons.js";
import type { LaneStatus } from "./lane-tabs.js";
import { el, laneColor, modelLabel, replyLabel, routeTitle } from "./views.js";

export interface LaneHeadActions {
  /** The Stop button of `model`'s lane was pressed. */
  cancel(model: string): void;
  /** `model`'s tab was pressed (narrow element only). */
  select(model: string): void;
}

export class LaneHeads {
  readonly element: HTMLElement;
  #tabbed = false;

  constructor(doc: Document) {
    this.element = el(doc, "div", "grid lanes");
    this.element.setAttribute("part", "lanes");
    this.element.setAttribute("aria-label", "Models");
    this.element.setAttribute("role", "group");
  }

  wire(signal: AbortSignal, actions: LaneHeadActions): void {
    this.element.addEventListener(
      "click",
      (event) => {
        const button = event.target instanceof Element ? event.target.closest("button") : null;
        const model = button?.dataset["model"];
        if (!model) return;
        if (button.dataset["action"] === "cancel") actions.cancel(model);
        else if (button.dataset["action"] === "select") actions.select(model);
      },
      { signal },
    );
  }

  /**
   * Draws one head per lane, anew: labels and colours come with the server's models. With
   * `tabbed`, each head's label is a toggle button that shows its lane (see `showStatus`).
   */
  render(lanes: readonly string[], models: readonly ModelInfo[], tabbed: boolean): void {
    const focused = this.#focusedButton();
    this.#tabbed = tabbed;
    this.element.classList.toggle("tabs", tabbed);
    this.element.replaceChildren(...lanes.map((model) => this.#head(model, models)));
    // The keyboard stays on the same lane's Stop (a tab's label may have become a div).
    if (focused) {
      const { model, action } = focused;
      const again = [...this.element.querySelectorAll<HTMLButtonElement>("button")].find(
        (button) => button.dataset["model"] === model && button.dataset["action"] === action,
      );
      (again ?? this.element.querySelector<HTMLButtonElement>(`button.cancel`))?.focus();
    }
  }

  #focusedButton(): { model: string; action: string } | null {
    const root = this.element.getRootNode();
    const active = root instanceof ShadowRoot ? root.activeElement : null;
    if (!(active instanceof HTMLButtonElement) || !this.element.contains(active)) return null;
    return { model: active.dataset["model"] ?? "", action: active.dataset["action"] ?? "" };
  }

  /**
   * Shows each lane's status; only a streaming lane's Stop can be pressed. `selected` is the
   * lane shown when tabbed.
   */
  showStatus(status: (model: string) => LaneStatus, selected: string | null): void {
    for (const lane of this.element.children) {
      if (!(lane instanceof HTMLElement)) continue;
      const model = lane.dataset["model"] ?? "";
      const now = status(model);
      lane.dataset["status"] = now;
      lane.toggleAttribute("data-streaming", now === "streaming");
      lane.toggleAttribute("data-selected", this.#tabbed && model === selected);
      const state = lane.querySelector(".lane-state");
      if (state) state.textContent = now;
      const tab = lane.querySelector<HTMLButtonElement>("button.lane-tab");
      tab?.setAttribute("aria-pressed", String(model === selected));
      const stop = lane.querySelector<HTMLButtonElement>("button.cancel");
      if (stop) stop.disabled = now !== "streaming";
    }
  }

  /**
   * Shows which model answers each router's lane ("Auto → Fast"), why on hover, and a switch
   * of model when its latest reply had one. Lanes of plain models keep their label.
   */
  showRoutes(latest: (lane: string) => Reply | null, models: readonly ModelInfo[]): void {
    for (const lane of this.element.children) {
      if (!(lane instanceof HTMLElement)) continue;
      const model = lane.dataset["model"] ?? "";
      const reply = latest(model);
      const routed = reply?.routedFrom ? reply : null;
      const label = lane.querySelector<HTMLElement>(".lane-label");
      if (label) {
        label.textContent = routed ? replyLabel(routed, models) : modelLabel(model, models);
      }
      const tab = lane.querySelector<HTMLElement>(".lane-tab");
      if (tab) tab.title = routed ? routeTitle(routed) : "";
      const switched = routed?.switches.at(-1);
      lane.toggleAttribute("data-switched", switched !== undefined);
      const note = lane.querySelector<HTMLElement>(".lane-switch");
      if (note) {
        note.textContent = switched ? `switched from ${modelLabel(switched.from, models)}` : "";
      }
    }
  }

  #head(model: string, models: readonly ModelInfo[]): HTMLElement {
    const doc = this.element.ownerDocument;
    const label = modelLabel(model, models);
    const lane = el(doc, "div", "lane");
    lane.dataset["model"] = model;
    lane.style.setProperty("--lane-color", laneColor(model, models));
    const name = this.#tabbed ? el(doc, "button", "lane-tab") : el(doc, "div", "lane-tab");
    if (name instanceof HTMLButtonElement) {
      name.type = "button";
      name.dataset["action"] = "select";
      name.dataset["model"] = model;
      name.setAttribute("aria-controls", "rt-turns");
    }
    name.append(
      el(doc, "span", "lane-label", label),
      el(doc, "span", "lane-switch"),
      el(doc, "span", "lane-state"),
    );
    const stop = el(doc, "button", "cancel with-icon");
    stop.type = "button";
    stop.setAttribute("aria-label", `Stop ${label}`);
    stop.dataset["action"] = "cancel";
    stop.dataset["model"] = model;
    stop.append(icon(doc, "stop"), el(doc, "span", "label", "Stop"));
    lane.append(name, stop);
    return lane;
  }
}
