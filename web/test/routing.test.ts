import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { RoomEvent, WelcomeFrame } from "../src/client/frames.js";
import { RoomState } from "../src/client/room-state.js";
import { laneStatus, latestReply } from "../src/element/lane-tabs.js";
import { laneOrder } from "../src/element/lanes.js";
import { replyLabel, routeTitle } from "../src/element/views.js";

const ada = { id: "u-1", name: "Ada" };
const models = [
  { id: "auto", label: "Auto", provider: "router", default: true },
  { id: "fast", label: "Fast", provider: "openai" },
  { id: "smart", label: "Smart", provider: "anthropic" },
];

function welcome(extra: Partial<WelcomeFrame> = {}): WelcomeFrame {
  return {
    type: "welcome",
    session: "s",
    participant: ada,
    room: "lobby",
    epoch: "e1",
    seq: 10,
    resumed: false,
    models,
    participants: [{ ...ada, typing: false }],
    messages: [],
    streams: [],
    ...extra,
  };
}

const routedTurn: RoomEvent[] = [
  { type: "message", seq: 11, id: "m-1", author: ada, text: "hi", prompt_id: "p-1", ts: 1 },
  {
    type: "stream_start",
    seq: 12,
    stream: "s-1",
    model: "fast",
    message: "r-1",
    reply_to: "m-1",
    ts: 2,
    routed_from: "auto",
    route_reason: "route 2: 2 chars <= 200",
  },
];

function routedState(): RoomState {
  const state = new RoomState(() => 0);
  state.applyWelcome(welcome());
  for (const event of routedTurn) state.apply(event);
  return state;
}

describe("routed streams in RoomState", () => {
  test("a routed reply is in its router's lane and names the model answering", () => {
    const state = routedState();
    const reply = state.replyOfStream("s-1");
    assert.ok(reply);
    assert.equal(reply.model, "fast");
    assert.equal(reply.lane, "auto");
    assert.equal(reply.routedFrom, "auto");
    assert.equal(reply.routeReason, "route 2: 2 chars <= 200");
    assert.deepEqual(laneOrder([], state.models, state.turns), ["auto"]);
    assert.equal(laneStatus("auto", state.turns), "streaming");
    assert.equal(laneStatus("fast", state.turns), "idle");
  });

  test("model_switch changes the model answering, keeps the lane, and is remembered", () => {
    const state = routedState();
    const changes = state.apply({
      type: "model_switch",
      seq: 13,
      stream: "s-1",
      model: "smart",
      reason: "fast failed before its first token: rate limited",
    });
    const reply = state.replyOfStream("s-1");
    assert.ok(reply);
    assert.deepEqual(changes, [{ kind: "reply", reply }]);
    assert.equal(reply.model, "smart");
    assert.equal(reply.lane, "auto");
    assert.deepEqual(reply.switches, [
      { from: "fast", to: "smart", reason: "fast failed before its first token: rate limited" },
    ]);
    assert.equal(replyLabel(reply, models), "Auto → Smart");
    assert.equal(
      routeTitle(reply),
      "Chosen: route 2: 2 chars <= 200\n" +
        "Switched to smart: fast failed before its first token: rate limited",
    );
  });

  test("a switch of an unknown stream, or to the same model, changes nothing", () => {
    const state = routedState();
    assert.deepEqual(
      state.apply({ type: "model_switch", seq: 13, stream: "nope", model: "x", reason: "r" }),
      [],
    );
    assert.deepEqual(
      state.apply({ type: "model_switch", seq: 14, stream: "s-1", model: "fast", reason: "r" }),
      [],
    );
    assert.deepEqual(state.replyOfStream("s-1")?.switches, []);
  });

  test("a snapshot keeps routed replies and running routed streams in the router's lane", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(
      welcome({
        messages: [
          { id: "m-1", role: "user", text: "q", status: "complete", ts: 1, author: ada },
          {
            id: "r-1",
            role: "assistant",
            text: "done",
            status: "complete",
            ts: 1,
            model: "smart",
            reply_to: "m-1",
            routed_from: "auto",
          },
          { id: "m-2", role: "user", text: "q2", status: "complete", ts: 2, author: ada },
          {
            id: "r-2",
            role: "assistant",
            text: "go",
            status: "streaming",
            ts: 2,
            model: "fast",
            reply_to: "m-2",
            routed_from: "auto",
          },
          {
            id: "r-3",
            role: "assistant",
            text: "plain",
            status: "complete",
            ts: 2,
            model: "fast",
            reply_to: "m-2",
          },
        ],
        streams: [
          {
            stream: "s-2",
            model: "smart",
            message: "r-2",
            reply_to: "m-2",
            text: "going",
            routed_from: "auto",
          },
        ],
      }),
    );
    assert.deepEqual(laneOrder([], state.models, state.turns), ["auto", "fast"]);
    const running = state.replyOfStream("s-2");
    assert.equal(running?.model, "smart", "the running stream's model is the newest word");
    assert.equal(running?.text, "going");
    assert.equal(latestReply("auto", state.turns)?.id, "r-2");
    assert.equal(latestReply("fast", state.turns)?.id, "r-3");
    const old = state.reply("r-1");
    assert.ok(old);
    assert.equal(replyLabel(old, models), "Auto → Smart");
    assert.equal(routeTitle(old), "", "history keeps no reason");
  });

  test("a reply that was not routed is labelled by its model alone", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome());
    state.apply(routedTurn[0] as RoomEvent);
    state.apply({
      type: "stream_start",
      seq: 12,
      stream: "s-9",
      model: "fast",
      message: "r-9",
      reply_to: "m-1",
      ts: 2,
    });
    const reply = state.replyOfStream("s-9");
    assert.ok(reply);
    assert.equal(reply.lane, "fast");
    assert.equal(replyLabel(reply, models), "Fast");
  });
});
