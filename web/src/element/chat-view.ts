/**
 * The element's view: its shadow DOM, drawn at most once per animation frame. Frames can come
 * faster than the screen refreshes; they are noted as they come (what changed, which parts
 * need drawing) and drawn together from a {@link ChatSnapshot} the element gives at that time.
 */

import type { ConnectionInfo } from "../client/client.js";
import type { Change, RoomState } from "../client/room-state.js";
import { FrameScheduler } from "./frame-scheduler.js";
import { LaneTabs, laneStatus, latestReply } from "./lane-tabs.js";
import { buildUi, type Ui } from "./layout.js";
import type { LaneLayout } from "./layout-watch.js";

/** What the view draws from, read once per frame. */
export interface ChatSnapshot {
  state: RoomState;
  connection: ConnectionInfo;
  room: string;
  /** The models prompts go to (the `models` attribute). */
  selectedModels: string[];
  /** Replies stream or our prompt is on its way: a new one waits in the room's queue. */
  busy: boolean;
  earlierLoading: boolean;
  earlierError: string | null;
  /** Whether earlier messages were loaded since the last snapshot. */
  earlierLoadedAny: boolean;
  /** `mode="launcher"`, whether its panel is open, and what came while it was closed. */
  launcher: { enabled: boolean; open: boolean; unread: number };
}

/** Parts drawn only when asked for, besides the rest of the chrome. */
export interface ChromeParts {
  people?: boolean;
  lanes?: boolean;
}

export class ChatView {
  readonly ui: Ui;
  readonly #shadow: ShadowRoot;
  readonly #read: () => ChatSnapshot;
  readonly #frames = new FrameScheduler(() => this.#draw());
  /** The parts around the conversation: bar, lane heads, earlier control, composer. */
  #chromePending = true;
  #lanesPending = true;
  #peoplePending = true;
  readonly #tabs = new LaneTabs();
  #layout: LaneLayout = "columns";

  /** Builds the DOM into `shadow`; `read` gives the element's state at drawing time. */
  constructor(shadow: ShadowRoot, read: () => ChatSnapshot) {
    this.#shadow = shadow;
    this.#read = read;
    this.ui = buildUi(shadow);
  }

  /** Notes what changed in the room, to draw it in the next frame. */
  track(changes: Change[]): void {
    this.ui.conversation.track(changes);
    this.#schedule();
  }

  /** Draws the chrome in the next frame, and `parts` that are drawn only when asked for. */
  invalidate(parts: ChromeParts = {}): void {
    if (parts.people) this.#peoplePending = true;
    if (parts.lanes) this.#lanesPending = true;
    this.#chromePending = true;
    this.#schedule();
  }

  /** The lane whose replies a narrow element shows. */
  get selectedLane(): string | null {
    return this.#tabs.selected;
  }

  /** Lanes side by side, or as tabs: the element's width changed which. */
  setLayout(layout: LaneLayout): void {
    if (layout === this.#layout) return;
    this.#layout = layout;
    this.invalidate({ lanes: true });
  }

  /** Shows `model`'s lane in a narrow element; false when it has none. */
  selectLane(model: string): boolean {
    if (!this.#tabs.select(model)) return false;
    this.invalidate();
    return true;
  }

  /** Queues words for the live region; those of one frame are said together, once. */
  announce(text: string): void {
    this.ui.announcer.say(text);
    this.#schedule();
  }

  /** Draws the conversation anew next time: the room's state was replaced. */
  reset(): void {
    this.ui.conversation.reset();
  }

  /** Draws at once rather than in the next frame: focus is about to move into what it shows. */
  drawNow(): void {
    this.#frames.cancel();
    this.#chromePending = true;
    this.#draw();
  }

  /** Drops a frame not drawn yet (the element left the document). */
  cancel(): void {
    this.#frames.cancel();
  }

  #schedule(): void {
    // A node of a shadow tree is connected when its host is in a document.
    if (this.ui.root.isConnected) this.#frames.request();
  }

  #draw(): void {
    const snapshot = this.#read();
    const ui = this.ui;
    const drawn = ui.conversation.draw(snapshot.state, snapshot.selectedModels);
    if (drawn.reset) this.#chromePending = true;
    if (drawn.lanesChanged) this.#lanesPending = this.#chromePending = true;
    if (this.#chromePending) {
      this.#chromePending = false;
      this.#drawChrome(snapshot);
    }
    if (drawn.anchor) ui.scroll.keepInPlace(drawn.anchor);
    ui.scroll.follow();
    ui.announcer.flush();
  }

  #drawChrome(snapshot: ChatSnapshot): void {
    const { state, connection } = snapshot;
    const ui = this.ui;
    const running = state.running();
    ui.bar.renderConnection(connection, snapshot.room);
    ui.root.style.setProperty("--lanes", String(Math.max(1, ui.conversation.lanes.length)));
    if (this.#peoplePending) {
      this.#peoplePending = false;
      ui.bar.renderPeople(state.participants, state.me?.id, state.participantCount);
    }
    if (this.#lanesPending) {
      this.#lanesPending = false;
      ui.lanes.render(ui.conversation.lanes, state.models, this.#layout === "tabs");
    }
    this.#tabs.sync(ui.conversation.lanes);
    this.#showSelectedLane();
    ui.lanes.showStatus((model) => laneStatus(model, state.turns), this.#tabs.selected);
    ui.lanes.showRoutes((lane) => latestReply(lane, state.turns), state.models);
    ui.empty.hidden = state.turns.length > 0;
    this.#drawEarlier(snapshot);
    ui.queue.render(state.queue, state.me?.id ?? null);
    ui.composer.render({
      busy: snapshot.busy,
      open: connection.state === "open",
      canStop: running.length > 0,
      escapeCloses: snapshot.launcher.enabled,
    });
    const streaming = running.length > 0;
    ui.launcher.render({ ...snapshot.launcher, streaming, room: snapshot.room });
  }

  /** In tabs, only the selected lane's replies show: one rule, kept for replies still to come. */
  #showSelectedLane(): void {
    const selected = this.#tabs.selected;
    const rule =
      selected === null
        ? ""
        : `.root[data-layout="tabs"] .reply:not([data-model=${CSS.escape(selected)}]) ` +
          "{ display: none; }";
    if (this.ui.tabStyle.textContent !== rule) this.ui.tabStyle.textContent = rule;
  }

  #drawEarlier(snapshot: ChatSnapshot): void {
    const { earlier, log } = this.ui;
    const hadFocus = this.#shadow.activeElement === earlier.button;
    earlier.render({
      status: snapshot.state.earlier,
      loading: snapshot.earlierLoading,
      error: snapshot.earlierError,
      loadedAny: snapshot.earlierLoadedAny,
      hasTurns: snapshot.state.turns.length > 0,
    });
    log.setAttribute("aria-busy", String(snapshot.earlierLoading));
    // The button goes once the start is shown; the keyboard focus goes to the conversation.
    if (hadFocus && earlier.button.hidden) log.focus({ preventScroll: true });
  }
}
