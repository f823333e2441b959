/**
 * The launcher of `mode="launcher"`: a floating button that opens the room in a panel. While
 * the panel is closed the button shows how many messages came and whether replies stream.
 * Without the mode, the panel is just the element's box and the button is hidden.
 */

import { icon, setIcon } from "./icons.js";
import { launcherLabel, unreadBadge } from "./launcher-state.js";
import { el } from "./views.js";

export interface LauncherDraw {
  enabled: boolean;
  open: boolean;
  unread: number;
  streaming: boolean;
  room: string;
}

export interface LauncherActions {
  /** The person opened or closed the panel (button, close button, Esc). */
  toggle(open: boolean): void;
}

export class LauncherView {
  readonly button: HTMLButtonElement;
  /** Holds the room's view; a dialog of its own in launcher mode. */
  readonly panel: HTMLElement;
  /** The panel's close button, put in the status bar. */
  readonly close: HTMLButtonElement;
  readonly #badge: HTMLElement;
  readonly #icon: SVGSVGElement;
  #enabled = false;

  constructor(doc: Document) {
    this.button = el(doc, "button", "launcher");
    this.button.type = "button";
    this.button.setAttribute("part", "launcher");
    this.button.setAttribute("aria-controls", "rt-panel");
    this.#badge = el(doc, "span", "badge");
    this.#badge.setAttribute("aria-hidden", "true");
    this.#icon = icon(doc, "chat");
    this.button.append(this.#icon, this.#badge);
    this.panel = el(doc, "div", "panel");
    this.panel.id = "rt-panel";
    this.panel.setAttribute("part", "panel");
    this.close = el(doc, "button", "close with-icon");
    this.close.type = "button";
    this.close.append(icon(doc, "close"), el(doc, "span", "label", "Close chat"));
  }

  /** Calls `actions.toggle` for the button, the close button and Esc in the open panel. */
  wire(signal: AbortSignal, actions: LauncherActions): void {
    const on = { signal };
    const pressed = () => actions.toggle(this.button.getAttribute("aria-expanded") !== "true");
    this.button.addEventListener("click", pressed, on);
    this.close.addEventListener("click", () => actions.toggle(false), on);
    const closeOnEscape = (event: KeyboardEvent) => {
      if (!this.#enabled || event.key !== "Escape" || this.panel.hidden) return;
      // Nearer than the composer's Esc (stop all): in a panel, Esc means close it.
      event.preventDefault();
      event.stopPropagation();
      actions.toggle(false);
    };
    this.panel.addEventListener("keydown", closeOnEscape, on);
    this.button.addEventListener("keydown", closeOnEscape, on);
  }

  /** Whether the keyboard is somewhere in the panel. */
  hasFocus(): boolean {
    const root = this.panel.getRootNode();
    const active = root instanceof ShadowRoot ? root.activeElement : null;
    return active !== null && this.panel.contains(active);
  }

  render({ enabled, open, unread, streaming, room }: LauncherDraw): void {
    this.#enabled = enabled;
    this.button.hidden = !enabled;
    this.close.hidden = !enabled;
    this.panel.hidden = enabled && !open;
    if (enabled) {
      this.panel.setAttribute("role", "dialog");
      this.panel.setAttribute("aria-label", room ? `Chat: ${room}` : "Chat");
    } else {
      this.panel.removeAttribute("role");
      this.panel.removeAttribute("aria-label");
    }
    this.button.setAttribute("aria-expanded", String(enabled && open));
    this.button.setAttribute("aria-label", launcherLabel(open, unread, streaming));
    this.button.toggleAttribute("data-streaming", !open && streaming);
    this.#badge.textContent = open ? "" : unreadBadge(unread);
    setIcon(this.#icon, enabled && open ? "close" : "chat");
  }
}
