/**
 * The launcher's state (`mode="launcher"`): whether its panel is open, how much happened in the
 * room while it was closed, and what its button says about that. Pure.
 */

export class LauncherState {
  #open = false;
  #unread = 0;

  get open(): boolean {
    return this.#open;
  }

  /** Messages and replies that came while the panel was closed, since it was last open. */
  get unread(): number {
    return this.#unread;
  }

  /** Opens or closes the panel; opening it reads everything. True when it changed. */
  setOpen(open: boolean): boolean {
    if (open === this.#open) return false;
    this.#open = open;
    if (open) this.#unread = 0;
    return true;
  }

  /**
   * Notes a new message or reply in the room. Someone's own prompt is not news to them, and
   * nothing is unread while the panel is open.
   */
  noteArrival(mine: boolean): void {
    if (!this.#open && !mine) this.#unread += 1;
  }

  /** Forgets what was unread: the room was joined anew. */
  clearUnread(): void {
    this.#unread = 0;
  }
}

/**
 * The launcher button's accessible name, with what waits behind it while it is closed. The
 * name stays "Chat" either way: whether it is open is its aria-expanded.
 */
export function launcherLabel(open: boolean, unread: number, streaming: boolean): string {
  if (open) return "Chat";
  const news: string[] = [];
  if (unread > 0) news.push(unread === 1 ? "1 new message" : `${unread} new messages`);
  if (streaming) news.push("replies streaming");
  return news.length > 0 ? `Chat (${news.join(", ")})` : "Chat";
}

/** The badge on the closed launcher: the unread count, capped so that it stays round. */
export function unreadBadge(unread: number): string {
  if (unread <= 0) return "";
  return unread > 99 ? "99+" : String(unread);
}
