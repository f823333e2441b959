/** What the element says in words about its connection, the streams and refusals. Pure. */

import type { ConnectionInfo } from "../client/client.js";
import type { ErrorFrame, StreamEndFrame } from "../client/frames.js";
import { formatRate } from "./format.js";

/** The status line's lead when the server refused the token or the room; it stays so. */
const DENIED_WORDS = { unauthorized: "Token rejected", forbidden: "Not allowed" } as const;

/** The status line of the connection, in the bar. */
export function statusText(info: ConnectionInfo): string {
  switch (info.state) {
    case "open":
      return `Live · ${info.transport === "sse" ? "SSE" : "WebSocket"}`;
    case "connecting":
    case "idle":
      return "Connecting…";
    case "reconnecting":
      return info.retryInMs !== undefined
        ? `Reconnecting in ${Math.max(1, Math.ceil(info.retryInMs / 1000))} s…`
        : "Reconnecting…";
    case "closed":
      if (info.denied) return `${DENIED_WORDS[info.denied]}: ${info.reason ?? "refused"}`;
      return info.reason ? `Disconnected: ${info.reason}` : "Disconnected";
  }
}

/** What the live region says when a model's stream ends: who, how, and how fast. */
export function streamEndedText(label: string, event: StreamEndFrame): string {
  const rate = event.tokens_per_s === null ? "" : `, ${formatRate(event.tokens_per_s)}`;
  return `${label} ${endedWords(event.reason)}${rate}.`;
}

function endedWords(reason: string): string {
  switch (reason) {
    case "complete":
      return "finished";
    case "length":
      return "stopped at the token limit";
    case "error":
      return "failed";
    default:
      return `was ${reason}`;
  }
}

/** What the live region says once a page of earlier messages is shown. */
export function earlierLoadedText(atStart: boolean): string {
  return atStart
    ? "Earlier messages loaded. This is the start of the conversation."
    : "Earlier messages loaded.";
}

/** The alert shown when the server refuses something the element sent. */
export function errorText(frame: ErrorFrame): string {
  const retry = frame.retry_after ? ` Try again in ${Math.ceil(frame.retry_after)} s.` : "";
  switch (frame.code) {
    case "busy":
      return "Replies are still streaming: wait, or use Interrupt & send.";
    default:
      return `${frame.message.replace(/\.$/, "")}.${retry}`;
  }
}
