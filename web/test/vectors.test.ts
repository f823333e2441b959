/**
 * The shared golden vectors of protocol/vectors/, as protocol/vectors/README.md says a client
 * uses them.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { type Codec, FrameError, jsonCodec, msgpackCodec } from "../src/client/codec.js";
import { asServerFrame } from "../src/client/frames.js";

interface Vector {
  name: string;
  direction: "client" | "server";
  frame?: Record<string, unknown> | null;
  json?: string;
  msgpack_hex?: string;
  code?: string;
  ref?: string | null;
}

const dir = process.env["RT_VECTORS_DIR"] ?? join(process.cwd(), "..", "protocol", "vectors");

function load(file: string): Vector[] {
  const doc = JSON.parse(readFileSync(join(dir, file), "utf-8")) as {
    protocol: string;
    vectors: Vector[];
  };
  assert.equal(doc.protocol, "rt.v1");
  assert.ok(doc.vectors.length > 0, `${file} holds no vectors`);
  return doc.vectors;
}

const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex, "hex"));

/** Each way a vector's input reaches a client, with the codec that reads it. */
function inputs(vector: Vector): [string, Codec, string | Uint8Array][] {
  const found: [string, Codec, string | Uint8Array][] = [];
  if (vector.json !== undefined) found.push(["json", jsonCodec, vector.json]);
  if (vector.msgpack_hex !== undefined)
    found.push(["msgpack", msgpackCodec, bytes(vector.msgpack_hex)]);
  return found;
}

/** `expected` with every field it has found in `actual`, which may hold more (unknown fields). */
function assertContains(actual: unknown, expected: unknown, path = "frame"): void {
  if (typeof expected !== "object" || expected === null) {
    assert.equal(actual, expected, path);
    return;
  }
  assert.equal(typeof actual, "object", path);
  assert.notEqual(actual, null, path);
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), path);
    assert.equal(actual.length, expected.length, `${path}.length`);
    expected.forEach((item, i) => assertContains(actual[i], item, `${path}[${i}]`));
    return;
  }
  const record = actual as Record<string, unknown>;
  for (const [key, value] of Object.entries(expected)) {
    assertContains(record[key], value, `${path}.${key}`);
  }
}

describe("server.json: the client decodes every server frame", () => {
  for (const vector of load("server.json")) {
    for (const [how, codec, input] of inputs(vector)) {
      test(`${vector.name} (${how})`, () => {
        const decoded = codec.decode(input);
        assert.deepEqual(decoded, vector.frame);
        assert.notEqual(asServerFrame(decoded), null, "a known server frame type");
      });
    }
  }
});

describe("client.json: what the client encodes decodes to the frame again", () => {
  for (const vector of load("client.json")) {
    const frame = vector.frame;
    assert.ok(frame);
    for (const codec of [jsonCodec, msgpackCodec]) {
      test(`${vector.name} (${codec.name})`, () => {
        const encoded = codec.encode(frame);
        assert.deepEqual(codec.decode(encoded), frame);
        // Byte equality holds except where rtserver writes an integral float (`0.0`), which
        // JavaScript has no way to tell from an integer (it writes `0`); the server reads both
        // the same. JSON is compared with those floats written as JavaScript writes them;
        // MessagePack, whose float and integer encodings differ in length, only without them.
        const integralFloat = /(\d)\.0(?=[,}\]])/g;
        if (codec === jsonCodec) {
          assert.equal(encoded, (vector.json ?? "").replace(integralFloat, "$1"));
        } else if (!integralFloat.test(vector.json ?? "")) {
          assert.equal(Buffer.from(encoded).toString("hex"), vector.msgpack_hex);
        }
      });
    }
  }
});

describe("tolerant.json: the client accepts what it must", () => {
  for (const vector of load("tolerant.json").filter((v) => v.direction === "server")) {
    for (const [how, codec, input] of inputs(vector)) {
      test(`${vector.name} (${how})`, () => {
        const frame = asServerFrame(codec.decode(input));
        if (vector.frame === null) assert.equal(frame, null, "an unknown frame is ignored");
        else assertContains(frame, vector.frame);
      });
    }
  }
});

describe("invalid.json: input that is no frame at all fails to decode", () => {
  // The other invalid inputs are well-formed maps whose fields only the server validates.
  const envelope = /^(json-|msgpack-|not-a-map|type-missing|type-null|type-not-string)/;
  for (const vector of load("invalid.json").filter((v) => envelope.test(v.name))) {
    for (const [how, codec, input] of inputs(vector)) {
      test(`${vector.name} (${how})`, () => {
        assert.throws(() => codec.decode(input), FrameError);
      });
    }
  }
});
