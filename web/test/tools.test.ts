import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { RoomEvent, WelcomeFrame } from "../src/client/frames.js";
import { RoomState, type ToolCallView } from "../src/client/room-state.js";
import { tokenRole } from "../src/element/connection-attributes.js";
import { callState, SHOWN_CHARS, shownText } from "../src/element/tool-calls.js";

const BOB = { id: "u-bob", name: "Bob" };

function welcome(): WelcomeFrame {
  return {
    type: "welcome",
    session: "s",
    participant: { id: "u-ada", name: "Ada" },
    room: "r",
    epoch: "e",
    seq: 0,
    resumed: false,
    models: [],
    participants: [],
    messages: [],
    streams: [],
  };
}

function running(): RoomState {
  const state = new RoomState();
  state.applyWelcome(welcome());
  const start: RoomEvent[] = [
    { type: "message", seq: 1, id: "m-1", author: BOB, text: "hi", prompt_id: "p", ts: 1 },
    {
      type: "stream_start",
      seq: 2,
      stream: "s-1",
      model: "demo",
      message: "r-1",
      reply_to: "m-1",
      ts: 2,
    },
  ];
  for (const event of start) state.apply(event);
  return state;
}

describe("RoomState and tool events", () => {
  test("a call, its approval, the decision and its result land on the reply", () => {
    const state = running();
    state.apply({ type: "tool_call", seq: 3, stream: "s-1", call: "c", name: "rm", args: "{" });
    state.apply({ type: "tool_call", seq: 4, stream: "s-1", call: "c", args: "}" });
    state.apply({ type: "tool_approval", seq: 5, stream: "s-1", call: "c", name: "rm", args: "{}" });
    assert.equal(state.reply("r-1")?.toolCalls[0]?.approval, "waiting");
    state.apply({ type: "tool_decision", seq: 6, stream: "s-1", call: "c", allow: true, by: BOB });
    state.apply({
      type: "tool_result",
      seq: 7,
      stream: "s-1",
      call: "c",
      name: "rm",
      result: "ok",
      duration_ms: 4,
    });
    assert.deepEqual(state.reply("r-1")?.toolCalls, [
      {
        call: "c",
        name: "rm",
        args: "{}",
        approval: "allowed",
        decidedBy: BOB,
        result: "ok",
        duration_ms: 4,
      },
    ]);
  });

  test("a timed-out approval is a denial by nobody, and an error result keeps its code", () => {
    const state = running();
    state.apply({ type: "tool_approval", seq: 3, stream: "s-1", call: "c", name: "x", args: "{}" });
    state.apply({ type: "tool_decision", seq: 4, stream: "s-1", call: "c", allow: false });
    state.apply({
      type: "tool_result",
      seq: 5,
      stream: "s-1",
      call: "c",
      name: "x",
      error: { code: "denied", message: "nobody approved" },
      duration_ms: 0,
    });
    const call = state.reply("r-1")?.toolCalls[0];
    assert.equal(call?.approval, "denied");
    assert.equal(call?.decidedBy, null);
    assert.equal(call?.error?.code, "denied");
    assert.equal(call?.result, undefined);
  });

  test("a stream that ends while a call waits drops the question", () => {
    const state = running();
    state.apply({ type: "tool_approval", seq: 3, stream: "s-1", call: "c", name: "x", args: "{}" });
    state.apply({
      type: "stream_end",
      seq: 4,
      stream: "s-1",
      reason: "cancelled",
      usage: null,
      ttft_ms: null,
      duration_ms: 5,
      tokens_per_s: null,
    });
    assert.equal(state.reply("r-1")?.toolCalls[0]?.approval, undefined);
  });

  test("events of a stream nobody knows change nothing", () => {
    const state = running();
    const changes = state.apply({
      type: "tool_result",
      seq: 3,
      stream: "s-9",
      call: "c",
      name: "x",
      result: "1",
      duration_ms: 0,
    });
    assert.deepEqual(changes, []);
  });
});

describe("a snapshot of a running stream", () => {
  test("brings the stream's calls, marking the ones waiting for approval", () => {
    const state = new RoomState();
    state.applyWelcome({
      ...welcome(),
      messages: [
        { id: "m-1", role: "user", text: "hi", status: "complete", ts: 1, author: BOB },
      ],
      streams: [
        {
          stream: "s-1",
          model: "demo",
          message: "r-1",
          reply_to: "m-1",
          text: "so far",
          tool_calls: [
            { call: "c1", name: "add", args: "{}", result: "2", duration_ms: 3 },
            { call: "c2", name: "rm", args: "{}" },
          ],
          waiting: ["c2"],
        },
      ],
    });
    assert.deepEqual(state.reply("r-1")?.toolCalls, [
      { call: "c1", name: "add", args: "{}", result: "2", duration_ms: 3 },
      { call: "c2", name: "rm", args: "{}", approval: "waiting" },
    ]);
  });
});

describe("tool call display", () => {
  test("control and bidi-override characters are made visible; long text is cut", () => {
    assert.equal(shownText("a\u0000b\u202ec\nd\te"), "a\ufffdb\ufffdc\nd\te");
    const long = shownText("x".repeat(SHOWN_CHARS + 5));
    assert.ok(long.endsWith("… 5 more characters"));
    assert.equal(long.length, SHOWN_CHARS + "\n… 5 more characters".length);
  });

  test("a call's state follows its record and its stream", () => {
    const call = (fields: Partial<ToolCallView>): ToolCallView => ({ call: "c", ...fields });
    assert.equal(callState(call({ args: '{"a":' }), true), "arguments");
    assert.equal(callState(call({ args: '{"a":1}' }), true), "running");
    assert.equal(callState(call({ args: "{}", approval: "waiting" }), true), "waiting");
    assert.equal(callState(call({ args: "{}", approval: "allowed" }), true), "running");
    assert.equal(callState(call({ result: "" }), true), "done");
    assert.equal(callState(call({ error: { code: "timeout", message: "m" } }), false), "error");
    assert.equal(callState(call({ args: "{}" }), false), "stopped");
  });

  test("the token's role claim decides whether approve buttons are drawn", () => {
    const token = (claims: object): string =>
      `h.${btoa(JSON.stringify(claims)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_")}.s`;
    assert.equal(tokenRole(token({ role: "viewer", sub: "é?>" })), "viewer");
    assert.equal(tokenRole(token({ role: "member" })), "member");
    assert.equal(tokenRole(token({})), "member");
    assert.equal(tokenRole(undefined), "member");
    assert.equal(tokenRole("not a token"), "member");
    assert.equal(tokenRole("a.!!!.b"), "member");
  });
});
