import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { RtClient } from "../src/client/client.js";
import type { ReasoningFrame, RoomEvent, WelcomeFrame } from "../src/client/frames.js";
import { type Reply, RoomState } from "../src/client/room-state.js";
import { reasoningLabel, stillThinking } from "../src/element/format.js";
import { FakeClock, FakeNetwork } from "./fakes.js";

const ada = { id: "u-1", name: "Ada" };

function welcome(extra: Partial<WelcomeFrame> = {}): WelcomeFrame {
  return {
    type: "welcome",
    session: "s",
    participant: ada,
    room: "lobby",
    epoch: "e1",
    seq: 0,
    resumed: false,
    models: [{ id: "a", label: "A", provider: "demo" }],
    participants: [],
    messages: [],
    streams: [],
    ...extra,
  };
}

const started: RoomEvent[] = [
  { type: "message", seq: 1, id: "m-1", author: ada, text: "2 + 2?", prompt_id: "p-1", ts: 1 },
  {
    type: "stream_start",
    seq: 2,
    stream: "s-a",
    model: "a",
    message: "r-a",
    reply_to: "m-1",
    ts: 2,
  },
];

function thought(seq: number, text: string, stream = "s-a"): ReasoningFrame {
  return { type: "reasoning", seq, stream, text };
}

describe("RoomState and reasoning", () => {
  test("folds reasoning apart from the answer, and not into the token count", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome());
    for (const event of started) state.apply(event);
    const changes = state.apply(thought(3, "Two and"));
    state.apply(thought(4, " two"));
    state.apply({ type: "token", seq: 5, stream: "s-a", text: "4." });
    assert.deepEqual(state.apply(thought(6, "lost", "s-unknown")), []);
    const reply = state.reply("r-a");
    assert.equal(changes[0]?.kind, "reply");
    assert.equal(reply?.reasoning, "Two and two");
    assert.equal(reply?.text, "4.");
    assert.equal(reply?.liveTokens, 1);
  });

  test("a snapshot brings history's reasoning and a running stream's", () => {
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
            ts: 2,
            model: "a",
            reply_to: "m-1",
            reasoning: "first",
          },
          { id: "m-2", role: "user", text: "q2", status: "complete", ts: 3, author: ada },
          {
            id: "r-2",
            role: "assistant",
            text: "",
            status: "streaming",
            ts: 4,
            model: "a",
            reply_to: "m-2",
          },
        ],
        streams: [
          { stream: "s-2", model: "a", message: "r-2", reply_to: "m-2", text: "", reasoning: "ha" },
        ],
      }),
    );
    assert.equal(state.reply("r-1")?.reasoning, "first");
    assert.equal(state.reply("r-2")?.reasoning, "ha");
    state.apply(thought(1, "lf", "s-2"));
    assert.equal(state.reply("r-2")?.reasoning, "half");
  });
});

describe("RtClient and reasoning", () => {
  test("emits reasoning events in seq order, counting them like any room event", () => {
    const network = new FakeNetwork();
    const client = new RtClient({
      room: "lobby",
      createTransport: network.factory,
      clock: new FakeClock(),
    });
    const seen: number[] = [];
    client.on("reasoning", (event) => seen.push(event.seq));
    client.on("token", (event) => seen.push(-event.seq));
    client.connect();
    network.last.deliver(welcome(), thought(1, "a"), thought(1, "duplicate"));
    network.last.deliver({ type: "token", seq: 2, stream: "s-a", text: "b" }, thought(3, "c"));
    assert.deepEqual(seen, [1, -2, 3]);
    client.close();
  });
});

function reply(overrides: Partial<Reply>): Reply {
  return {
    id: "r",
    model: "a",
    lane: "a",
    routedFrom: null,
    routeReason: null,
    switches: [],
    replyTo: "m",
    replaces: null,
    stream: "s",
    text: "",
    reasoning: "",
    status: "streaming",
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
    ...overrides,
  };
}

describe("the reasoning disclosure's label", () => {
  test("none without reasoning, whatever the reply does", () => {
    assert.equal(reasoningLabel(reply({})), null);
    assert.equal(reasoningLabel(reply({ status: "complete", text: "x" })), null);
  });

  test("Thinking… until the answer or a tool call begins, then the length", () => {
    assert.equal(reasoningLabel(reply({ reasoning: "hm" })), "Thinking…");
    assert.equal(stillThinking(reply({ reasoning: "hm", toolCalls: [{ call: "c" }] })), false);
    assert.equal(reasoningLabel(reply({ reasoning: "hm", text: "A" })), "Reasoning · 2 characters");
    const long = "é".repeat(1_234);
    assert.equal(
      reasoningLabel(reply({ reasoning: long, status: "cancelled" })),
      "Reasoning · 1,234 characters",
    );
    // Code points, as the server counts: an emoji is one character, not two UTF-16 units.
    assert.equal(
      reasoningLabel(reply({ reasoning: "🙂", status: "complete" })),
      "Reasoning · 1 character",
    );
  });
});
