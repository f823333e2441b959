import assert from "node:assert/strict";
import { test } from "node:test";

import { Emitter } from "../src/client/emitter.js";

interface Events {
  ping: number;
}

test("a throwing listener is reported and does not stop the others", () => {
  const errors: unknown[] = [];
  const emitter = new Emitter<Events>((error) => errors.push(error));
  const seen: number[] = [];
  emitter.on("ping", () => {
    throw new Error("listener bug");
  });
  emitter.on("ping", (n) => seen.push(n));
  emitter.emit("ping", 7);
  assert.deepEqual(seen, [7]);
  assert.match(String(errors[0]), /listener bug/);
});

test("the function returned by on() removes that listener only", () => {
  const emitter = new Emitter<Events>();
  const seen: string[] = [];
  const off = emitter.on("ping", () => seen.push("a"));
  emitter.on("ping", () => seen.push("b"));
  off();
  emitter.emit("ping", 1);
  assert.deepEqual(seen, ["b"]);
});
