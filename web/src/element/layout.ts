/** The element's shadow DOM: its parts, made once and put together in their places. */

import { Announcer } from "./announcer.js";
import { Composer } from "./composer.js";
import { Conversation } from "./conversation.js";
import { EarlierView } from "./earlier-view.js";
import { LaneHeads } from "./lane-heads.js";
import { LauncherView } from "./launcher.js";
import { LogScroll } from "./log-scroll.js";
import { QueueView } from "./queue-view.js";
import { StatusBar } from "./status-bar.js";
import { STYLES } from "./styles.js";
import { COMPACT_STYLES } from "./styles-compact.js";
import { el } from "./views.js";

export interface Ui {
  root: HTMLElement;
  bar: StatusBar;
  /** The scrolling conversation: lane heads, earlier messages, the turns. */
  log: HTMLElement;
  lanes: LaneHeads;
  earlier: EarlierView;
  empty: HTMLElement;
  conversation: Conversation;
  scroll: LogScroll;
  /** The room's queue: prompts waiting for the replies to end, everyone's. */
  queue: QueueView;
  composer: Composer;
  announcer: Announcer;
  /** The floating button and the panel the rest sits in (`mode="launcher"`). */
  launcher: LauncherView;
  /** Rules that follow the tab shown in a narrow element: which lane's replies show. */
  tabStyle: HTMLStyleElement;
  /** As wide as the lanes need side by side (see layout-watch.ts). */
  probe: HTMLElement;
}

/** Builds the parts into `shadow`, replacing whatever it held. */
export function buildUi(shadow: ShadowRoot): Ui {
  const doc = shadow.ownerDocument;
  const root = el(doc, "div", "root");
  root.setAttribute("part", "root");
  const bar = new StatusBar(doc);
  const log = logRegion(doc);
  const lanes = new LaneHeads(doc);
  const empty = el(
    doc,
    "p",
    "empty",
    "No messages yet. Ask something and watch the models answer side by side.",
  );
  const turns = el(doc, "div", "turns");
  turns.id = "rt-turns";
  const earlier = new EarlierView(doc, turns.id);
  const probe = el(doc, "div", "lanes-probe");
  const probeBox = el(doc, "div", "probe-box");
  probeBox.setAttribute("aria-hidden", "true");
  probeBox.append(probe);
  log.append(probeBox, lanes.element, earlier.element, empty, turns);
  const scroll = new LogScroll(log);
  const queue = new QueueView(doc);
  const composer = new Composer(doc);
  const announcer = new Announcer(doc);
  root.append(bar.element, log, scroll.jump, queue.element, composer.element, announcer.element);
  const launcher = new LauncherView(doc);
  bar.element.append(launcher.close);
  launcher.panel.append(root);
  const tabStyle = el(doc, "style");
  shadow.replaceChildren(
    el(doc, "style", undefined, STYLES + COMPACT_STYLES),
    tabStyle,
    launcher.button,
    launcher.panel,
  );
  const conversation = new Conversation(turns);
  return {
    root,
    bar,
    log,
    lanes,
    earlier,
    empty,
    conversation,
    scroll,
    queue,
    composer,
    announcer,
    launcher,
    tabStyle,
    probe,
  };
}

function logRegion(doc: Document): HTMLElement {
  const log = el(doc, "div", "log");
  log.setAttribute("part", "log");
  log.tabIndex = 0;
  log.setAttribute("role", "region");
  log.setAttribute("aria-label", "Conversation");
  return log;
}
