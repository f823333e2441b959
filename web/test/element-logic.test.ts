import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { Turn } from "../src/client/room-state.js";
import { clientOptions, pageSize } from "../src/element/connection-attributes.js";
import { PendingPrompts } from "../src/element/pending-prompts.js";

function attributes(values: Record<string, string>): (name: string) => string | null {
  return (name) => values[name] ?? null;
}

describe("clientOptions", () => {
  test("no valid room, no options", () => {
    assert.equal(clientOptions(attributes({}), ""), null);
    assert.equal(clientOptions(attributes({ room: "no spaces allowed" }), ""), null);
  });

  test("reads the attributes, with the script's server as the default", () => {
    const options = clientOptions(
      attributes({ room: "team", transport: "sse", codec: "json", "ping-interval": "2.5" }),
      "https://rt.example.com/",
    );
    assert.equal(options?.server, "https://rt.example.com/");
    assert.equal(options?.transport, "sse");
    assert.equal(options?.codec, "json");
    assert.equal(options?.pingIntervalMs, 2500);
    assert.equal(options?.pingTimeoutMs, undefined);
  });

  test("unknown values fall back to the defaults", () => {
    const options = clientOptions(
      attributes({ room: "team", transport: "carrier-pigeon", codec: "xml", "ping-timeout": "-1" }),
      "",
    );
    assert.equal(options?.transport, "auto");
    assert.equal(options?.codec, undefined);
    assert.equal(options?.pingTimeoutMs, undefined);
  });

  test("history-page-size is 1 to 200", () => {
    assert.equal(pageSize("50"), 50);
    assert.equal(pageSize("0"), undefined);
    assert.equal(pageSize("201"), undefined);
    assert.equal(pageSize("2.5"), undefined);
    assert.equal(pageSize(null), undefined);
  });
});

describe("PendingPrompts", () => {
  test("a sent prompt is awaited until echoed", () => {
    const prompts = new PendingPrompts();
    prompts.sent("p1", "hello");
    assert.equal(prompts.awaiting, true);
    prompts.echoed("other");
    assert.equal(prompts.awaiting, true);
    prompts.echoed("p1");
    assert.equal(prompts.awaiting, false);
  });

  test("a refused prompt gives its text back, once", () => {
    const prompts = new PendingPrompts();
    prompts.sent("p1", "hello");
    assert.equal(prompts.refused("other"), null);
    assert.equal(prompts.refused(undefined), null);
    assert.equal(prompts.refused("p1"), "hello");
    assert.equal(prompts.refused("p1"), null);
  });

  test("a snapshot holding the prompt ends the wait", () => {
    const prompts = new PendingPrompts();
    prompts.sent("p1", "hello");
    const turn = { id: "m1", promptId: "p1" } as Turn;
    prompts.seenIn([{ ...turn, promptId: null }]);
    assert.equal(prompts.awaiting, true);
    prompts.seenIn([turn]);
    assert.equal(prompts.awaiting, false);
  });

  test("clear forgets the prompt on its way", () => {
    const prompts = new PendingPrompts();
    prompts.sent("p1", "now");
    prompts.clear();
    assert.equal(prompts.awaiting, false);
    assert.equal(prompts.refused("p1"), null);
  });
});
