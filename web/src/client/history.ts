/**
 * Earlier history over plain HTTP: `GET /v1/rooms/{room}/messages?limit=N&before=<message id>`.
 *
 * A `welcome` carries only the room's latest messages (50 by default, a server setting); older
 * ones are paged in from here, newest page first. The endpoint answers the allowed origins
 * (`[server] allowed_origins`), so an embedded widget can call it too.
 */

import type { Clock } from "./client.js";
import type { HistoryMessage } from "./frames.js";
import { apiUrl, roomPath } from "./transport.js";

export interface HistoryQuery {
  /** A message id: the page ends just before it. Absent for the newest page. */
  before?: string;
  /** Messages per page, 1 to 200; the server's default (50) when absent. */
  limit?: number;
}

export interface HistoryPage {
  /** Oldest first. */
  messages: HistoryMessage[];
  /** The `before` of the page preceding this one; null when this page starts the room. */
  next: string | null;
}

/** A page could not be had; `message` says why in words fit to show. */
export class HistoryError extends Error {
  override readonly name = "HistoryError";
  /** The HTTP status, or null when no answer came. */
  readonly status: number | null;

  constructor(message: string, status: number | null = null) {
    super(message);
    this.status = status;
  }
}

/** A page that takes longer than this is given up: the request may sit on a dead connection. */
export const HISTORY_TIMEOUT_MS = 20_000;

export interface HistorySource {
  server: string;
  room: string;
  clock: Clock;
  /** Sent as `Authorization: Bearer`, when the server needs tokens. */
  token?: string | undefined;
}

export async function fetchHistoryPage(
  { server, room, clock, token }: HistorySource,
  query: HistoryQuery,
  fetchImpl: typeof fetch,
): Promise<HistoryPage> {
  const url = apiUrl(server, roomPath(room, "messages"));
  if (query.limit !== undefined) url.searchParams.set("limit", String(query.limit));
  if (query.before !== undefined) url.searchParams.set("before", query.before);
  const abort = new AbortController();
  const timer = clock.setTimeout(() => abort.abort(), HISTORY_TIMEOUT_MS);
  const failed = () =>
    new HistoryError(
      abort.signal.aborted ? "the server took too long to answer" : "could not reach the server",
    );
  try {
    let response: Response;
    try {
      const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
      response = await fetchImpl(url.href, { signal: abort.signal, headers });
    } catch {
      throw failed();
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      // Not JSON: a proxy's error page, say. Its status still tells what went wrong.
      if (abort.signal.aborted) throw failed();
      body = undefined;
    }
    if (!response.ok) throw new HistoryError(errorMessage(body, response.status), response.status);
    const page = asHistoryPage(body);
    if (!page) throw new HistoryError("the server's answer was not a page of messages");
    return page;
  } finally {
    clock.clearTimeout(timer);
  }
}

function errorMessage(body: unknown, status: number): string {
  const message = isRecord(body) ? body["message"] : undefined;
  return typeof message === "string" && message ? message : `the server answered HTTP ${status}`;
}

/** The page in `body`, checked as far as the code that uses it relies on; null if it is not. */
function asHistoryPage(body: unknown): HistoryPage | null {
  if (!isRecord(body) || !Array.isArray(body["messages"])) return null;
  const next = body["next"] ?? null;
  if (next !== null && typeof next !== "string") return null;
  const messages: unknown[] = body["messages"];
  const valid = messages.every(
    (m) =>
      isRecord(m) &&
      typeof m["id"] === "string" &&
      (m["role"] === "user" || m["role"] === "assistant") &&
      typeof m["text"] === "string",
  );
  return valid ? { messages: messages as HistoryMessage[], next } : null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
