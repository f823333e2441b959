/** Words and figures shown for a reply: its stats line and why it ended. Pure, tested in Node. */

import type { Reply } from "../client/room-state.js";

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export function formatRate(tokensPerS: number): string {
  return `${tokensPerS < 10 ? tokensPerS.toFixed(1) : Math.round(tokensPerS)} tok/s`;
}

/**
 * The stats line of a reply: the server's figures once it has ended; while it streams, the
 * tokens so far and a rate measured here (marked `~`, since it includes network jitter).
 */
export function statsLine(reply: Reply, liveRate: number | null): string {
  const parts: string[] = [];
  if (reply.status === "streaming") {
    if (reply.liveTokens > 0) parts.push(`${reply.liveTokens} tokens`);
    if (liveRate !== null) parts.push(`~${formatRate(liveRate)}`);
    return parts.join(" · ");
  }
  if (reply.ttftMs !== null) parts.push(`TTFT ${formatMs(reply.ttftMs)}`);
  if (reply.tokensPerS !== null) {
    parts.push(`${reply.tokensPerSEstimated ? "~" : ""}${formatRate(reply.tokensPerS)}`);
  }
  if (reply.usage) {
    const approx = reply.usage.estimated ? "~" : "";
    parts.push(`${approx}${reply.usage.output_tokens} tokens`);
  }
  if (reply.durationMs !== null) parts.push(formatMs(reply.durationMs));
  return parts.join(" · ");
}

/** Why a reply stopped short, in words; null for a reply that is streaming or complete. */
export function reasonText(reply: Reply): string | null {
  switch (reply.reason ?? reply.status) {
    case "cancelled":
      return "Cancelled: stopped before it finished.";
    case "interrupted":
      return "Interrupted: the conversation was redirected.";
    case "length":
      return "Stopped at the token limit.";
    case "error": {
      const error = reply.error;
      if (!error) return "Failed: the model could not answer.";
      const retry = error.retry_after ? ` Try again in ${Math.ceil(error.retry_after)} s.` : "";
      return `Failed (${error.code}): ${error.message.replace(/\.$/, "")}.${retry}`;
    }
    default:
      return null;
  }
}

/** True while a reply is still thinking: it streams, and neither answer nor tool call came yet. */
export function stillThinking(reply: Reply): boolean {
  return reply.status === "streaming" && reply.text === "" && reply.toolCalls.length === 0;
}

/**
 * The label of a reply's reasoning disclosure: "Thinking…" while the model thinks, then how long
 * the thinking was, in characters (code points, as the server counts text); null with none.
 */
export function reasoningLabel(reply: Reply): string | null {
  if (reply.reasoning === "") return null;
  if (stillThinking(reply)) return "Thinking…";
  const length = [...reply.reasoning].length;
  return `Reasoning · ${length.toLocaleString("en-US")} character${length === 1 ? "" : "s"}`;
}
