/**
 * The lanes as tabs, for a narrow element: which lane is shown, and what each lane's tab says
 * about its model's latest reply. Pure: the view asks, and draws what it is told.
 */

import type { MessageStatus } from "../client/frames.js";
import type { Reply, Turn } from "../client/room-state.js";

/** What a lane's head says about its model: its latest reply's state, or idle before any. */
export type LaneStatus = "idle" | "streaming" | "done" | "cancelled" | "interrupted" | "error";

const STATUS_OF: Record<MessageStatus, LaneStatus> = {
  streaming: "streaming",
  complete: "done",
  cancelled: "cancelled",
  interrupted: "interrupted",
  error: "error",
};

/** The newest reply of lane `lane` in `turns` (newest turn last), if it has one. */
export function latestReply(lane: string, turns: readonly Turn[]): Reply | null {
  for (let t = turns.length - 1; t >= 0; t -= 1) {
    const replies = turns[t]?.replies ?? [];
    for (let r = replies.length - 1; r >= 0; r -= 1) {
      const reply = replies[r];
      if (reply?.lane === lane) return reply;
    }
  }
  return null;
}

/** The status of `model`'s newest reply in `turns` (newest turn last). */
export function laneStatus(model: string, turns: readonly Turn[]): LaneStatus {
  const reply = latestReply(model, turns);
  return reply ? STATUS_OF[reply.status] : "idle";
}

/**
 * Which lane's replies a narrow element shows. The choice is the reader's and is kept while its
 * lane exists; when it goes (or before any choice) the first lane is shown.
 */
export class LaneTabs {
  #chosen: string | null = null;
  #lanes: readonly string[] = [];

  /** The lane shown, or null when there are none. */
  get selected(): string | null {
    if (this.#chosen !== null && this.#lanes.includes(this.#chosen)) return this.#chosen;
    return this.#lanes[0] ?? null;
  }

  /** Follows the lanes as they are now; true when that changed the lane shown. */
  sync(lanes: readonly string[]): boolean {
    const before = this.selected;
    this.#lanes = [...lanes];
    return this.selected !== before;
  }

  /** Shows `model`'s lane; false (and nothing changes) when there is no such lane. */
  select(model: string): boolean {
    if (!this.#lanes.includes(model)) return false;
    this.#chosen = model;
    return true;
  }
}
