import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { MessageStatus } from "../src/client/frames.js";
import type { Reply, Turn } from "../src/client/room-state.js";
import { LaneTabs, laneStatus } from "../src/element/lane-tabs.js";
import { LauncherState, launcherLabel, unreadBadge } from "../src/element/launcher-state.js";

function reply(model: string, status: MessageStatus): Reply {
  return {
    id: `${model}-${status}`,
    model,
    lane: model,
    routedFrom: null,
    routeReason: null,
    switches: [],
    replyTo: "m",
    replaces: null,
    stream: "s",
    text: "",
    reasoning: "",
    status,
    ts: 0,
    reason: null,
    usage: null,
    ttftMs: null,
    durationMs: null,
    tokensPerS: null,
    tokensPerSEstimated: false,
    error: null,
    toolCalls: [],
    liveTokens: 0,
    firstTokenAt: null,
  };
}

function turn(id: string, replies: Reply[]): Turn {
  return {
    id,
    author: null,
    text: "",
    ts: 0,
    promptId: null,
    replies,
    queued: false,
    withdrawn: false,
  };
}

describe("laneStatus", () => {
  test("a lane without replies is idle", () => {
    assert.equal(laneStatus("a", []), "idle");
    assert.equal(laneStatus("a", [turn("m", [reply("b", "streaming")])]), "idle");
  });

  test("the newest reply of the lane's model decides, in words a tab can show", () => {
    const turns = [
      turn("m1", [reply("a", "error"), reply("b", "complete")]),
      turn("m2", [reply("a", "cancelled"), reply("a", "streaming")]),
    ];
    assert.equal(laneStatus("a", turns), "streaming");
    assert.equal(laneStatus("b", turns), "done");
    assert.equal(laneStatus("a", turns.slice(0, 1)), "error");
    assert.equal(laneStatus("a", [turn("m", [reply("a", "cancelled")])]), "cancelled");
    assert.equal(laneStatus("a", [turn("m", [reply("a", "interrupted")])]), "interrupted");
  });
});

describe("LaneTabs", () => {
  test("shows the first lane until one is chosen, and none without lanes", () => {
    const tabs = new LaneTabs();
    assert.equal(tabs.selected, null);
    assert.equal(tabs.sync(["a", "b"]), true);
    assert.equal(tabs.selected, "a");
    assert.equal(tabs.sync(["a", "b"]), false);
  });

  test("keeps the reader's choice while its lane is there, and only a lane can be chosen", () => {
    const tabs = new LaneTabs();
    tabs.sync(["a", "b"]);
    assert.equal(tabs.select("b"), true);
    assert.equal(tabs.selected, "b");
    assert.equal(tabs.select("nope"), false);
    assert.equal(tabs.selected, "b");
    assert.equal(tabs.sync(["c", "b", "a"]), false);
    assert.equal(tabs.selected, "b");
  });

  test("falls back to the first lane when the chosen one goes, and back when it returns", () => {
    const tabs = new LaneTabs();
    tabs.sync(["a", "b"]);
    tabs.select("b");
    assert.equal(tabs.sync(["a"]), true);
    assert.equal(tabs.selected, "a");
    assert.equal(tabs.sync(["a", "b"]), true);
    assert.equal(tabs.selected, "b");
    assert.equal(tabs.sync([]), true);
    assert.equal(tabs.selected, null);
  });
});

describe("LauncherState", () => {
  test("counts what others post while closed; opening reads it all", () => {
    const launcher = new LauncherState();
    assert.equal(launcher.open, false);
    launcher.noteArrival(false);
    launcher.noteArrival(true);
    launcher.noteArrival(false);
    assert.equal(launcher.unread, 2);
    assert.equal(launcher.setOpen(true), true);
    assert.equal(launcher.unread, 0);
    launcher.noteArrival(false);
    assert.equal(launcher.unread, 0);
    assert.equal(launcher.setOpen(true), false);
    assert.equal(launcher.setOpen(false), true);
    launcher.noteArrival(false);
    assert.equal(launcher.unread, 1);
    launcher.clearUnread();
    assert.equal(launcher.unread, 0);
  });

  test("the button says what waits behind it, and only while closed", () => {
    assert.equal(launcherLabel(false, 0, false), "Chat");
    assert.equal(launcherLabel(false, 1, false), "Chat (1 new message)");
    assert.equal(launcherLabel(false, 3, true), "Chat (3 new messages, replies streaming)");
    assert.equal(launcherLabel(false, 0, true), "Chat (replies streaming)");
    assert.equal(launcherLabel(true, 3, true), "Chat");
  });

  test("the badge is the count, capped, and empty at none", () => {
    assert.equal(unreadBadge(0), "");
    assert.equal(unreadBadge(7), "7");
    assert.equal(unreadBadge(99), "99");
    assert.equal(unreadBadge(100), "99+");
  });
});
