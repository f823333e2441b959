/**
 * The tool calls of one reply: each call's arguments as they stream, whether it runs, waits for
 * approval or has ended, its result (collapsible) and, while it waits, Approve and Deny buttons
 * for members. A call's box is made once and updated in place, so an open result stays open.
 *
 * Tool output and arguments are untrusted: they are shown as text (never parsed as HTML), with
 * control and bidirectional-override characters made visible, and cut to a display limit.
 */

import type { ToolCallView } from "../client/room-state.js";
import { el } from "./views.js";

/** Characters of arguments or a result shown; the rest is counted, not drawn. */
export const SHOWN_CHARS = 20_000;
/** Results longer than this start collapsed. */
const OPEN_UNDER_CHARS = 400;
// C0/C1 controls but tab and newline, and the characters that reorder text on screen.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** Text as drawn: unsafe characters replaced by U+FFFD, and cut to `SHOWN_CHARS`. */
export function shownText(text: string): string {
  const cut = text.length > SHOWN_CHARS;
  const shown = (cut ? text.slice(0, SHOWN_CHARS) : text).replace(UNSAFE, "\ufffd");
  return cut ? `${shown}\n… ${text.length - SHOWN_CHARS} more characters` : shown;
}

/** What a call is doing, for its badge and `data-state`. */
export type CallState = "arguments" | "waiting" | "running" | "done" | "error" | "stopped";

export function callState(call: ToolCallView, streaming: boolean): CallState {
  if (call.error) return "error";
  if (call.result !== undefined) return "done";
  if (!streaming) return "stopped";
  if (call.approval === "waiting") return "waiting";
  if (call.approval === "allowed" || wholeJson(call.args ?? "")) return "running";
  return "arguments";
}

/**
 * Whether a call's arguments have all arrived. No event says when the server starts a call: its
 * arguments parsing as one JSON value is the sign that the model has finished writing them.
 */
function wholeJson(args: string): boolean {
  if (args.trim() === "") return false;
  try {
    JSON.parse(args);
    return true;
  } catch {
    return false;
  }
}

const STATE_TEXT: Record<CallState, string> = {
  arguments: "writing arguments…",
  waiting: "waiting for approval",
  running: "running…",
  done: "done",
  error: "failed",
  stopped: "stopped",
};

class CallBox {
  readonly element: HTMLElement;
  readonly #name: HTMLElement;
  readonly #state: HTMLElement;
  readonly #args: HTMLElement;
  readonly #ask: HTMLElement;
  readonly #decision: HTMLElement;
  readonly #result: HTMLDetailsElement;
  readonly #resultLabel: HTMLElement;
  readonly #resultText: HTMLElement;
  #drawn = "";

  constructor(doc: Document, call: string) {
    this.element = el(doc, "div", "tool");
    this.element.dataset["call"] = call;
    const head = el(doc, "div", "tool-head");
    this.#name = el(doc, "strong", "tool-name");
    this.#state = el(doc, "span", "tool-state");
    this.#state.setAttribute("aria-live", "polite");
    head.append(this.#name, this.#state);
    this.#args = el(doc, "pre", "tool-args");
    this.#ask = el(doc, "div", "tool-ask");
    this.#ask.setAttribute("role", "group");
    this.#ask.setAttribute("aria-label", "Approve this tool call?");
    for (const [action, label] of [
      ["approve", "Approve"],
      ["deny", "Deny"],
    ] as const) {
      const button = el(doc, "button", `tool-${action} ${action === "approve" ? "primary" : "danger"}`, label);
      button.type = "button";
      button.dataset["action"] = action;
      button.dataset["call"] = call;
      this.#ask.append(button);
    }
    this.#decision = el(doc, "p", "tool-decision");
    this.#result = el(doc, "details", "tool-result");
    this.#resultLabel = el(doc, "summary");
    this.#resultText = el(doc, "pre");
    this.#result.append(this.#resultLabel, this.#resultText);
    this.element.append(head, this.#args, this.#ask, this.#decision, this.#result);
  }

  update(call: ToolCallView, streaming: boolean, canApprove: boolean): void {
    const key = JSON.stringify([call, streaming, canApprove]);
    if (key === this.#drawn) return;
    const first = this.#drawn === "";
    this.#drawn = key;
    const state = callState(call, streaming);
    this.element.dataset["state"] = state;
    this.#name.textContent = shownText(call.name ?? call.call);
    this.#state.textContent =
      STATE_TEXT[state] + (call.duration_ms !== undefined && state !== "running"
        ? ` in ${call.duration_ms} ms`
        : "");
    this.#args.textContent = shownText(call.args ?? "");
    this.#ask.hidden = !(state === "waiting" && canApprove);
    this.#decision.textContent = decisionText(call);
    this.#decision.hidden = this.#decision.textContent === "";
    this.#drawResult(call, first);
  }

  #drawResult(call: ToolCallView, first: boolean): void {
    const text = call.error ? `${call.error.code}: ${call.error.message}` : call.result;
    this.#result.hidden = text === undefined;
    if (text === undefined) return;
    const wasEmpty = this.#resultText.textContent === "";
    this.#resultLabel.textContent = call.error
      ? "Error"
      : `Result (${text.length.toLocaleString()} characters)`;
    this.#resultText.textContent = shownText(text);
    // Short results show at once; a long one waits for a click. Once drawn, the reader decides.
    if (wasEmpty || first) this.#result.open = text.length < OPEN_UNDER_CHARS;
  }
}

function decisionText(call: ToolCallView): string {
  if (call.approval === "allowed") return `Approved by ${call.decidedBy?.name ?? "a member"}`;
  if (call.approval !== "denied") return "";
  if (!call.decidedBy) return "Denied: nobody answered in time";
  return `Denied by ${call.decidedBy.name}`;
}

/** The `.tools` part of a reply. */
export class ToolCallsView {
  readonly #boxes = new Map<string, CallBox>();

  constructor(readonly element: HTMLElement) {}

  render(calls: readonly ToolCallView[], streaming: boolean, canApprove: boolean): void {
    const doc = this.element.ownerDocument;
    for (const call of calls) {
      let box = this.#boxes.get(call.call);
      if (!box) {
        box = new CallBox(doc, call.call);
        this.#boxes.set(call.call, box);
        this.element.append(box.element);
      }
      box.update(call, streaming, canApprove);
    }
  }
}
