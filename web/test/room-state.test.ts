import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { RoomEvent, WelcomeFrame } from "../src/client/frames.js";
import { RoomState } from "../src/client/room-state.js";

const ada = { id: "u-1", name: "Ada" };

function welcome(extra: Partial<WelcomeFrame> = {}): WelcomeFrame {
  return {
    type: "welcome",
    session: "s",
    participant: ada,
    room: "lobby",
    epoch: "e1",
    seq: 10,
    resumed: false,
    models: [
      { id: "a", label: "A", provider: "demo" },
      { id: "b", label: "B", provider: "demo" },
    ],
    participants: [{ ...ada, typing: false }],
    messages: [],
    streams: [],
    ...extra,
  };
}

const turn: RoomEvent[] = [
  { type: "message", seq: 1, id: "m-1", author: ada, text: "hi", prompt_id: "p-1", ts: 1 },
  {
    type: "stream_start",
    seq: 2,
    stream: "s-a",
    model: "a",
    message: "r-a",
    reply_to: "m-1",
    ts: 2,
  },
  {
    type: "stream_start",
    seq: 3,
    stream: "s-b",
    model: "b",
    message: "r-b",
    reply_to: "m-1",
    ts: 2,
  },
  { type: "token", seq: 4, stream: "s-a", text: "Hel" },
  { type: "token", seq: 5, stream: "s-b", text: "Yo" },
  { type: "token", seq: 6, stream: "s-a", text: "lo" },
];

describe("RoomState", () => {
  test("counts the tokens a coalesced frame says it holds", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome());
    for (const event of turn.slice(0, 2)) state.apply(event);
    state.apply({ type: "token", seq: 3, stream: "s-a", text: "Hel" });
    state.apply({ type: "token", seq: 4, stream: "s-a", text: "lo there", tokens: 3 });
    const reply = state.turns[0]?.replies[0];
    assert.equal(reply?.text, "Hello there");
    assert.equal(reply?.liveTokens, 4);
  });

  test("groups interleaved streams into one turn, a lane per model", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome());
    for (const event of turn) state.apply(event);
    assert.equal(state.turns.length, 1);
    const [first] = state.turns;
    assert.deepEqual(
      first?.replies.map((r) => [r.model, r.text, r.status]),
      [
        ["a", "Hello", "streaming"],
        ["b", "Yo", "streaming"],
      ],
    );
    assert.equal(state.busy, true);
  });

  test("a stream_end records reason and figures, and the turn is over when all have ended", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome());
    for (const event of turn) state.apply(event);
    state.apply({
      type: "stream_end",
      seq: 7,
      stream: "s-a",
      reason: "cancelled",
      usage: null,
      ttft_ms: 12,
      duration_ms: 40,
      tokens_per_s: null,
    });
    assert.equal(state.reply("r-a")?.status, "cancelled");
    assert.equal(state.reply("r-a")?.ttftMs, 12);
    assert.equal(state.busy, true);
    state.apply({
      type: "stream_end",
      seq: 8,
      stream: "s-b",
      reason: "length",
      usage: { input_tokens: 1, output_tokens: 2 },
      ttft_ms: 5,
      duration_ms: 50,
      tokens_per_s: 40,
      tokens_per_s_estimated: true,
    });
    // `length` is a complete reply that hit the limit; the reason keeps the difference.
    assert.equal(state.reply("r-b")?.status, "complete");
    assert.equal(state.reply("r-b")?.tokensPerSEstimated, true);
    assert.equal(state.reply("r-a")?.tokensPerSEstimated, false);
    assert.equal(state.reply("r-b")?.reason, "length");
    assert.equal(state.busy, false);
  });

  test("a snapshot takes running streams' text over the message's checkpoint", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(
      welcome({
        messages: [
          { id: "m-1", role: "user", text: "hi", status: "complete", ts: 1, author: ada },
          {
            id: "r-a",
            role: "assistant",
            text: "Hel",
            status: "streaming",
            ts: 2,
            model: "a",
            reply_to: "m-1",
            stream: "s-a",
          },
          {
            id: "r-x",
            role: "assistant",
            text: "orphan",
            status: "complete",
            ts: 0,
            model: "a",
            reply_to: "gone",
          },
        ],
        streams: [
          { stream: "s-a", model: "a", message: "r-a", reply_to: "m-1", text: "Hello wor" },
        ],
      }),
    );
    assert.equal(state.reply("r-a")?.text, "Hello wor");
    assert.equal(state.busy, true);
    // A reply whose prompt fell out of the history window has no turn to sit in.
    assert.equal(state.reply("r-x"), undefined);
    state.apply({ type: "token", seq: 11, stream: "s-a", text: "ld" });
    assert.equal(state.reply("r-a")?.text, "Hello world");
  });

  test("a resumed welcome keeps the conversation; a snapshot replaces it", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome());
    for (const event of turn) state.apply(event);
    assert.deepEqual(state.applyWelcome(welcome({ resumed: true })), [{ kind: "presence" }]);
    assert.equal(state.turns.length, 1);
    assert.deepEqual(state.applyWelcome(welcome()), [{ kind: "reset" }]);
    assert.equal(state.turns.length, 0);
    assert.equal(state.busy, false);
  });

  test("history statuses become reasons, and tool call fragments join up", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(
      welcome({
        messages: [
          { id: "m-1", role: "user", text: "hi", status: "complete", ts: 1, author: ada },
          {
            id: "r-a",
            role: "assistant",
            text: "Cut",
            status: "interrupted",
            ts: 2,
            model: "a",
            reply_to: "m-1",
          },
        ],
      }),
    );
    assert.equal(state.reply("r-a")?.reason, "interrupted");
    state.apply({
      type: "message",
      seq: 11,
      id: "m-2",
      author: ada,
      text: "time?",
      prompt_id: "p-2",
      ts: 3,
    });
    state.apply({
      type: "stream_start",
      seq: 12,
      stream: "s-b",
      model: "b",
      message: "r-b",
      reply_to: "m-2",
      ts: 3,
    });
    state.apply({
      type: "tool_call",
      seq: 13,
      stream: "s-b",
      call: "c-1",
      name: "clock",
      args: '{"tz":',
    });
    state.apply({ type: "tool_call", seq: 14, stream: "s-b", call: "c-1", args: '"UTC"}' });
    assert.deepEqual(state.reply("r-b")?.toolCalls, [
      { call: "c-1", name: "clock", args: '{"tz":"UTC"}' },
    ]);
  });

  test("the live rate counts tokens after the first over the time since it came", () => {
    let now = 1000;
    const state = new RoomState(() => now);
    state.applyWelcome(welcome());
    for (const event of turn.slice(0, 4)) state.apply(event);
    const reply = state.reply("r-a");
    assert.ok(reply);
    assert.equal(state.liveRate(reply), null);
    now = 1500;
    state.apply({ type: "token", seq: 5, stream: "s-a", text: "l" });
    state.apply({ type: "token", seq: 6, stream: "s-a", text: "o" });
    assert.equal(state.liveRate(reply), 4);
  });
});
