import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { Reply } from "../src/client/room-state.js";
import { reasonText, statsLine } from "../src/element/format.js";
import { laneOrder, parseModelList } from "../src/element/lanes.js";
import { stableBoundary } from "../src/element/markdown-blocks.js";

describe("stableBoundary", () => {
  test("cuts after the last blank line", () => {
    const text = "# Title\n\nFirst paragraph.\n\nSecond, still stre";
    assert.equal(text.slice(stableBoundary(text)), "Second, still stre");
  });

  test("never cuts inside a code fence, open or closed", () => {
    const open = "Intro\n\n```js\nlet a = 1;\n\nlet b = 2;\n";
    assert.equal(open.slice(stableBoundary(open)), "```js\nlet a = 1;\n\nlet b = 2;\n");
    const closed = `${open}\`\`\`\n\nAfter`;
    assert.equal(closed.slice(stableBoundary(closed)), "After");
  });

  test("a fence closes only with its own character, at least as long", () => {
    const text = "~~~~\ncode\n```\n\nstill code\n~~~\n\nmore code\n";
    assert.equal(stableBoundary(text), 0);
  });

  test("a last line without its newline decides nothing", () => {
    assert.equal(stableBoundary("One\n\n   "), 5);
    assert.equal(stableBoundary("no blank line yet\nat all"), 0);
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
    status: "complete",
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

describe("reply stats and reasons", () => {
  test("an ended reply shows the server's figures", () => {
    const line = statsLine(
      reply({
        ttftMs: 180,
        tokensPerS: 31.5,
        durationMs: 1250,
        usage: { input_tokens: 3, output_tokens: 34 },
      }),
      null,
    );
    assert.equal(line, "TTFT 180 ms · 32 tok/s · 34 tokens · 1.25 s");
  });

  test("a rate and count the server estimated are marked approximate", () => {
    const line = statsLine(
      reply({
        tokensPerS: 23.4,
        tokensPerSEstimated: true,
        usage: { input_tokens: 3, output_tokens: 108, estimated: true },
      }),
      null,
    );
    assert.equal(line, "~23 tok/s · ~108 tokens");
  });

  test("a streaming reply shows its live count and measured rate", () => {
    assert.equal(
      statsLine(reply({ status: "streaming", liveTokens: 12 }), 7.25),
      "12 tokens · ~7.3 tok/s",
    );
  });

  test("reasons are given for replies that stopped short", () => {
    assert.equal(reasonText(reply({})), null);
    assert.match(
      reasonText(reply({ status: "cancelled", reason: "cancelled" })) ?? "",
      /^Cancelled/,
    );
    assert.match(reasonText(reply({ status: "interrupted" })) ?? "", /^Interrupted/);
    assert.match(reasonText(reply({ reason: "length" })) ?? "", /token limit/);
    assert.equal(
      reasonText(
        reply({
          status: "error",
          reason: "error",
          error: { code: "provider_error", message: "overloaded.", retry_after: 2.5 },
        }),
      ),
      "Failed (provider_error): overloaded. Try again in 3 s.",
    );
  });
});

describe("lanes", () => {
  const models = [
    { id: "a", label: "A", provider: "demo" },
    { id: "b", label: "B", provider: "demo", default: true },
  ];

  test("the models attribute takes commas and spaces, once each", () => {
    assert.deepEqual(parseModelList(" a, b  a,,c "), ["a", "b", "c"]);
    assert.deepEqual(parseModelList(null), []);
  });

  test("selected models first, then the server's defaults, and history keeps its columns", () => {
    assert.deepEqual(laneOrder([], models, []), ["b"]);
    const turns = [
      {
        id: "m",
        author: null,
        text: "",
        ts: 0,
        promptId: null,
        replies: [reply({ model: "z", lane: "z" })],
        queued: false,
        withdrawn: false,
      },
    ];
    assert.deepEqual(laneOrder(["a"], models, turns), ["a", "z"]);
  });
});
