/**
 * The composer: the prompt box, its buttons and the alert of a refusal, and the keyboard:
 * Enter sends (the room queues it while replies stream), Shift+Enter adds a new line,
 * Ctrl+Enter interrupts and sends now, Esc stops every stream. What those do is the element's:
 * the composer asks through {@link ComposerActions}.
 */

import { type IconName, icon, setIcon } from "./icons.js";
import { el } from "./views.js";

/** How long a refused action's message stays up. */
const ALERT_MS = 8000;

export type SubmitHow = "send" | "interrupt";

export interface ComposerActions {
  /** Sends or queues `text`; true when it was taken, so that the box is emptied. */
  submit(text: string, how: SubmitHow): boolean;
  /** The box's text changed. */
  typed(text: string): void;
  stopAll(): void;
  /** Whether anything streams, for Esc to stop. */
  streaming(): boolean;
}

export interface ComposerState {
  /** Replies stream or our prompt is on its way: a new one waits in the room's queue. */
  busy: boolean;
  /** Connected. */
  open: boolean;
  /** Something streams that Stop all can stop. */
  canStop: boolean;
  /** Esc closes the launcher's panel instead of stopping the streams. */
  escapeCloses?: boolean;
}

export class Composer {
  readonly element: HTMLFormElement;
  readonly #input: HTMLTextAreaElement;
  readonly #send: HTMLButtonElement;
  readonly #interrupt: HTMLButtonElement;
  readonly #stopAll: HTMLButtonElement;
  readonly #hint: HTMLElement;
  readonly #alert: HTMLElement;
  #alertTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(doc: Document) {
    this.element = el(doc, "form", "composer");
    this.element.setAttribute("part", "composer");
    this.#input = promptBox(doc);
    this.#send = button(doc, "Send", "send", "primary", "submit");
    this.#interrupt = button(doc, "Interrupt & send", "interrupt");
    this.#stopAll = button(doc, "Stop all", "stop", "danger");
    this.#interrupt.hidden = this.#stopAll.hidden = true;
    this.#hint = el(doc, "p", "hint");
    this.#hint.id = "rt-hint";
    this.#alert = el(doc, "p", "alert");
    this.#alert.setAttribute("role", "alert");
    this.#assemble(doc);
  }

  /** Listens until `signal` aborts; Esc is heard anywhere in `keyScope` (the shadow root). */
  wire(signal: AbortSignal, keyScope: Node, actions: ComposerActions): void {
    const on = { signal };
    this.element.addEventListener("submit", (event) => this.#onSubmit(event, actions), on);
    this.#input.addEventListener("keydown", (event) => this.#onEnter(event, actions), on);
    this.#input.addEventListener("input", () => actions.typed(this.#input.value), on);
    keyScope.addEventListener("keydown", (event) => onEscape(event, actions), on);
    this.#interrupt.addEventListener("click", () => this.#submit(actions, "interrupt"), on);
    this.#stopAll.addEventListener("click", () => actions.stopAll(), on);
  }

  render({ busy, open, canStop, escapeCloses = false }: ComposerState): void {
    setLabel(this.#send, busy ? "Queue" : "Send", busy ? "queue" : "send");
    this.#send.setAttribute(
      "aria-label",
      busy ? "Queue this prompt in the room until the replies finish" : "Send",
    );
    this.#interrupt.hidden = !busy;
    this.#stopAll.hidden = !busy;
    this.#stopAll.disabled = !canStop;
    this.#hint.textContent = hintText(busy, open, escapeCloses);
  }

  /** Puts the keyboard in the prompt box. */
  focus(): void {
    this.#input.focus();
  }

  /** Gives a refused prompt back rather than lose what was typed, unless more was typed. */
  restore(text: string): void {
    if (!this.#input.value) this.#input.value = text;
  }

  /** Shows why the server refused something, for a while. */
  showAlert(text: string): void {
    this.#alert.textContent = text;
    if (this.#alertTimer) clearTimeout(this.#alertTimer);
    this.#alertTimer = setTimeout(() => {
      this.#alert.textContent = "";
    }, ALERT_MS);
  }

  /** Stops the alert's timer (the element left the document). */
  dispose(): void {
    if (this.#alertTimer) clearTimeout(this.#alertTimer);
    this.#alertTimer = null;
  }

  #onSubmit(event: SubmitEvent, actions: ComposerActions): void {
    event.preventDefault();
    this.#submit(actions, "send");
  }

  /** Enter sends, Ctrl+Enter (⌘+Enter) interrupts; Shift+Enter and IME input are typing. */
  #onEnter(event: KeyboardEvent, actions: ComposerActions): void {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    this.#submit(actions, event.ctrlKey || event.metaKey ? "interrupt" : "send");
  }

  #submit(actions: ComposerActions, how: SubmitHow): void {
    const text = this.#input.value;
    if (!text.trim()) return;
    if (actions.submit(text, how)) this.#input.value = "";
    this.#input.focus();
  }

  #assemble(doc: Document): void {
    const label = el(doc, "label", "sr-only", "Message");
    label.htmlFor = this.#input.id;
    const actions = el(doc, "div", "actions");
    actions.append(this.#send, this.#interrupt, this.#stopAll);
    const row = el(doc, "div", "composer-row");
    row.append(this.#input, actions);
    this.element.append(label, row, this.#hint, this.#alert);
  }
}

/**
 * Esc anywhere in the element stops every stream, when there is one to stop. (In a launcher's
 * panel Esc closes the panel: that listener is nearer and stops the event first.)
 */
function onEscape(event: Event, actions: ComposerActions): void {
  if (!(event instanceof KeyboardEvent) || event.key !== "Escape" || !actions.streaming()) return;
  event.preventDefault();
  actions.stopAll();
}

function promptBox(doc: Document): HTMLTextAreaElement {
  const input = el(doc, "textarea");
  input.id = "rt-input";
  input.rows = 2;
  input.placeholder = "Ask the models…";
  input.setAttribute("aria-describedby", "rt-hint");
  return input;
}

/**
 * A button with an icon and its words; a narrow element hides the words from sight (not from
 * assistive technology, whose name for the button they stay).
 */
function button(
  doc: Document,
  text: string,
  iconName: IconName,
  className?: string,
  type: "button" | "submit" = "button",
): HTMLButtonElement {
  const node = el(doc, "button", className);
  node.classList.add("with-icon");
  node.type = type;
  node.append(icon(doc, iconName), el(doc, "span", "label", text));
  return node;
}

function setLabel(node: HTMLButtonElement, text: string, iconName: IconName): void {
  const label = node.querySelector(".label");
  if (label) label.textContent = text;
  const svg = node.querySelector("svg");
  if (svg) setIcon(svg, iconName);
}

function hintText(busy: boolean, open: boolean, escapeCloses: boolean): string {
  if (busy) {
    return (
      "Replies are streaming. Enter queues your prompt in the room, Ctrl+Enter interrupts and " +
      `sends it now, ${escapeCloses ? "Stop all" : "Esc"} stops them all and clears the queue.`
    );
  }
  return open
    ? "Enter sends, Shift+Enter adds a new line."
    : "Not connected: a prompt you send now goes out when the connection is back.";
}
