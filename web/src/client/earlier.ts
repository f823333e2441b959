/**
 * EarlierMessages: pages a room's older history into a RoomState, one page per request, for a
 * "Load earlier messages" control. No DOM: a view asks, then redraws from what it returns.
 */

import type { HistoryPage, HistoryQuery } from "./history.js";
import type { Change, RoomState } from "./room-state.js";

export type PageSource = (query: HistoryQuery) => Promise<HistoryPage>;

export class EarlierMessages {
  readonly #state: RoomState;
  readonly #source: PageSource;
  /** Messages per page; the server's default when undefined. */
  limit: number | undefined;
  #loading = false;
  #error: string | null = null;

  /** `source` is usually `(query) => client.history(query)`; `limit` is the page size. */
  constructor(state: RoomState, source: PageSource, limit?: number) {
    this.#state = state;
    this.#source = source;
    this.limit = limit;
  }

  /** True while a page is on its way. */
  get loading(): boolean {
    return this.#loading;
  }

  /** Why the last load failed, in words fit to show; null once one has worked. */
  get error(): string | null {
    return this.#error;
  }

  /**
   * Finds out whether the room holds anything before the oldest message known (a page of one
   * message, not applied), so that a control can stay hidden in a room that has no more.
   * A failed check counts as "more": then the person can try, and sees the error if any.
   */
  async check(): Promise<void> {
    if (this.#state.earlier !== "unknown") return;
    const snapshots = this.#state.snapshots;
    const query = this.#query(1);
    let more: boolean;
    try {
      more = (await this.#source(query)).messages.length > 0;
    } catch {
      more = true;
    }
    this.#state.noteEarlier(more, snapshots);
  }

  /**
   * Loads the page before the oldest message known and puts it before the conversation.
   * Resolves to what changed (nothing while another load runs, after a failure, or when a
   * snapshot replaced the conversation meanwhile); a failure sets {@link error}.
   */
  async load(): Promise<Change[]> {
    if (this.#loading) return [];
    this.#loading = true;
    const snapshots = this.#state.snapshots;
    try {
      const page = await this.#source(this.#query(this.limit));
      // The last error stays until now: taking it away at the start would move the view.
      this.#error = null;
      return this.#state.prependHistory(page, snapshots);
    } catch (error) {
      this.#error = error instanceof Error ? error.message : String(error);
      return [];
    } finally {
      this.#loading = false;
    }
  }

  #query(limit: number | undefined): HistoryQuery {
    const query: HistoryQuery = {};
    const before = this.#state.oldestMessageId;
    if (before !== null) query.before = before;
    if (limit !== undefined) query.limit = limit;
    return query;
  }
}
