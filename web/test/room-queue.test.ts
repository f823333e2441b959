import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { HistoryMessage, RoomEvent, WelcomeFrame } from "../src/client/frames.js";
import { RoomState } from "../src/client/room-state.js";

const ada = { id: "u-1", name: "Ada" };
const bob = { id: "u-2", name: "Bob" };

function welcome(messages: HistoryMessage[] = []): WelcomeFrame {
  return {
    type: "welcome",
    session: "s",
    participant: ada,
    room: "lobby",
    epoch: "e1",
    seq: 10,
    resumed: false,
    models: [{ id: "a", label: "A", provider: "demo" }],
    participants: [],
    messages,
    streams: [],
  };
}

function queued(seq: number, id: string, author = bob): RoomEvent {
  const prompt_id = `p-${id}`;
  return { type: "message", seq, id, author, text: id, prompt_id, ts: seq, queued: true };
}

describe("RoomState: the room's queue", () => {
  test("a queued prompt waits in the queue and joins the turns when it starts", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome());
    state.apply({
      type: "message",
      seq: 1,
      id: "m-1",
      author: ada,
      text: "hi",
      prompt_id: "p",
      ts: 1,
    });
    assert.deepEqual(state.apply(queued(2, "m-2")), [{ kind: "queue" }]);
    state.apply(queued(3, "m-3", ada));
    assert.deepEqual(
      state.queue.map((turn) => [turn.id, turn.author?.name, turn.queued]),
      [
        ["m-2", "Bob", true],
        ["m-3", "Ada", true],
      ],
    );
    assert.deepEqual(state.turns.map((turn) => turn.id), ["m-1"]);
    const changes = state.apply({ type: "unqueued", seq: 4, messages: ["m-2"], reason: "started" });
    assert.deepEqual(changes.map((change) => change.kind), ["queue", "turn"]);
    assert.deepEqual(state.queue.map((turn) => turn.id), ["m-3"]);
    assert.deepEqual(state.turns.map((turn) => [turn.id, turn.queued, turn.withdrawn]), [
      ["m-1", false, false],
      ["m-2", false, false],
    ]);
    state.apply({
      type: "stream_start",
      seq: 5,
      stream: "s-2",
      model: "a",
      message: "r-2",
      reply_to: "m-2",
      ts: 5,
    });
    assert.equal(state.turns[1]?.replies[0]?.id, "r-2");
  });

  test("withdrawn and cleared prompts leave the queue as turns that never ran", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome());
    for (const [seq, id] of [[1, "m-1"], [2, "m-2"], [3, "m-3"]] as const) {
      state.apply(queued(seq, id));
    }
    state.apply({ type: "unqueued", seq: 4, messages: ["m-2", "unknown"], reason: "withdrawn" });
    state.apply({ type: "unqueued", seq: 5, messages: ["m-3", "m-1"], reason: "cleared" });
    assert.equal(state.queue.length, 0);
    assert.deepEqual(state.turns.map((turn) => [turn.id, turn.withdrawn]), [
      ["m-2", true],
      ["m-3", true],
      ["m-1", true],
    ]);
  });

  test("a snapshot's queued and withdrawn messages, and a reply that replaces another", () => {
    const state = new RoomState(() => 0);
    const user = (id: string, extra: Partial<HistoryMessage> = {}): HistoryMessage => ({
      id,
      role: "user",
      text: id,
      status: "complete",
      ts: 1,
      author: bob,
      ...extra,
    });
    const reply = (id: string, extra: Partial<HistoryMessage> = {}): HistoryMessage => ({
      id,
      role: "assistant",
      text: id,
      status: "complete",
      ts: 1,
      model: "a",
      reply_to: "m-1",
      ...extra,
    });
    state.applyWelcome(
      welcome([
        user("m-1"),
        reply("r-1", { status: "error" }),
        user("m-2", { withdrawn: true }),
        user("m-3", { queued: true }),
        reply("r-1b", { replaces: "r-1" }),
      ]),
    );
    assert.deepEqual(state.queue.map((turn) => turn.id), ["m-3"]);
    assert.deepEqual(state.turns.map((turn) => [turn.id, turn.withdrawn]), [
      ["m-1", false],
      ["m-2", true],
    ]);
    assert.deepEqual(state.turns[0]?.replies.map((r) => [r.id, r.replaces]), [
      ["r-1", null],
      ["r-1b", "r-1"],
    ]);
    state.apply({
      type: "stream_start",
      seq: 11,
      stream: "s-9",
      model: "a",
      message: "r-1c",
      reply_to: "m-1",
      ts: 9,
      replaces: "r-1b",
    });
    assert.equal(state.turns[0]?.replies.at(-1)?.replaces, "r-1b");
    state.applyWelcome(welcome());
    assert.equal(state.queue.length, 0, "a new snapshot replaces the queue");
  });
});
