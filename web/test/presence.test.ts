/**
 * Presence in big rooms: a welcome lists a bounded few and counts everyone; `presence_diff`
 * frames change that list, and the client keeps a participant list and count from them.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { RtClient } from "../src/client/client.js";
import { jsonCodec } from "../src/client/codec.js";
import {
  asServerFrame,
  type PresenceDiffFrame,
  type PresenceEntry,
  type WelcomeFrame,
} from "../src/client/frames.js";
import { RoomState } from "../src/client/room-state.js";
import { FakeClock, FakeNetwork } from "./fakes.js";

const entry = (n: number, typing = false): PresenceEntry => ({
  id: `p${n}`,
  name: `n${n}`,
  typing,
});

function welcome(participants: PresenceEntry[], count?: number): WelcomeFrame {
  const frame: WelcomeFrame = {
    type: "welcome",
    session: "s",
    participant: { id: "p0", name: "n0" },
    room: "lobby",
    epoch: "e1",
    seq: 0,
    resumed: false,
    models: [],
    participants,
    messages: [],
    streams: [],
  };
  if (count !== undefined) frame.participant_count = count;
  return frame;
}

function diff(changed: PresenceEntry[], left: string[], count: number): PresenceDiffFrame {
  return { type: "presence_diff", changed, left, count };
}

const ids = (state: RoomState) => state.participants.map((p) => p.id);

describe("RoomState presence", () => {
  test("a welcome's count is everyone, its list a few; an older server's count is the list", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome([entry(0), entry(1)], 5_000));
    assert.deepEqual([ids(state), state.participantCount], [["p0", "p1"], 5_000]);
    state.applyWelcome(welcome([entry(0), entry(1)]));
    assert.equal(state.participantCount, 2);
  });

  test("a diff removes who left, replaces who changed in place, adds newcomers at the end", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome([entry(0), entry(1), entry(2)], 3));
    const changes = state.applyPresenceDiff(diff([entry(3), entry(2, true)], ["p1"], 3));
    assert.deepEqual(changes, [{ kind: "presence" }]);
    assert.deepEqual(state.participants, [entry(0), entry(2, true), entry(3)]);
    assert.equal(state.participantCount, 3);
  });

  test("a diff is idempotent: an entry already held is replaced, an unknown leaver ignored", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome([entry(0), entry(1)], 2));
    state.applyPresenceDiff(diff([entry(1)], ["p9"], 2));
    state.applyPresenceDiff(diff([entry(1)], ["p9"], 2));
    assert.deepEqual(ids(state), ["p0", "p1"]);
  });

  test("a count-only diff changes the count and not the list", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome([entry(0)], 100));
    state.applyPresenceDiff(diff([], [], 4_999));
    assert.deepEqual([ids(state), state.participantCount], [["p0"], 4_999]);
  });

  test("a whole list from an older server replaces the list and counts it", () => {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome([entry(0)], 100));
    state.applyPresence([entry(4), entry(5)]);
    assert.deepEqual([ids(state), state.participantCount], [["p4", "p5"], 2]);
  });
});

describe("RtClient presence_diff", () => {
  test("is emitted as its own event, and unknown-field tolerant", () => {
    const network = new FakeNetwork();
    const client = new RtClient({
      room: "lobby",
      createTransport: network.factory,
      clock: new FakeClock(),
    });
    const heard: PresenceDiffFrame[] = [];
    client.on("presence_diff", (frame) => heard.push(frame));
    client.connect();
    network.last.deliver(welcome([entry(0)], 1), diff([entry(1)], [], 2));
    assert.deepEqual(heard, [diff([entry(1)], [], 2)]);
  });
});

describe("presence vectors", () => {
  const dir = process.env["RT_VECTORS_DIR"] ?? join(process.cwd(), "..", "protocol", "vectors");
  const vectors = (
    JSON.parse(readFileSync(join(dir, "server.json"), "utf-8")) as {
      vectors: { name: string; json: string }[];
    }
  ).vectors;
  const named = (name: string) => {
    const found = vectors.find((v) => v.name === name);
    assert.ok(found, `vector ${name}`);
    const frame = asServerFrame(jsonCodec.decode(found.json) as Record<string, unknown>);
    assert.ok(frame);
    return frame;
  };

  test("the counted welcome and the diffs of the vectors apply in order", () => {
    const state = new RoomState(() => 0);
    const counted = named("welcome-counted");
    assert.equal(counted.type, "welcome");
    if (counted.type !== "welcome") return;
    state.applyWelcome({ ...counted, participants: [] });
    assert.equal(state.participantCount, 5_000);
    for (const name of ["presence-diff-joined", "presence-diff-typing-and-left"]) {
      const frame = named(name);
      assert.equal(frame.type, "presence_diff");
      if (frame.type === "presence_diff") state.applyPresenceDiff(frame);
    }
    const [only] = state.participants;
    assert.deepEqual(
      [state.participants.length, only?.typing, state.participantCount],
      [1, true, 1],
    );
    const countOnly = named("presence-diff-count-only");
    if (countOnly.type === "presence_diff") state.applyPresenceDiff(countOnly);
    assert.deepEqual([state.participants.length, state.participantCount], [1, 4_999]);
  });
});
