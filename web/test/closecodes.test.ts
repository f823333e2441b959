/** The client's CloseCode against protocol/vectors/closecodes.json: same names, same numbers. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { CloseCode } from "../src/client/closecodes.js";

const dir = process.env["RT_VECTORS_DIR"] ?? join(process.cwd(), "..", "protocol", "vectors");

test("CloseCode holds exactly the codes of the vector file", () => {
  const doc = JSON.parse(readFileSync(join(dir, "closecodes.json"), "utf-8")) as {
    protocol: string;
    vectors: { name: string; code: number }[];
  };
  assert.equal(doc.protocol, "rt.v1");
  const pinned = Object.fromEntries(doc.vectors.map((v) => [v.name, v.code]));
  assert.ok(Object.keys(pinned).length > 0);
  assert.deepEqual({ ...CloseCode }, pinned);
});
