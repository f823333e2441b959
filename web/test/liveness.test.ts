import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { type ClientOptions, RtClient } from "../src/client/client.js";
import type { ClientFrame, TokenFrame, WelcomeFrame } from "../src/client/frames.js";
import { FakeClock, FakeNetwork, type FakeTransport } from "./fakes.js";

function welcome(seq: number, resumed = false): WelcomeFrame {
  return {
    type: "welcome",
    session: "sess",
    participant: { id: "u-1", name: "Ada" },
    room: "lobby",
    epoch: "e1",
    seq,
    resumed,
    models: [],
    participants: [],
    messages: [],
    streams: [],
  };
}

function token(seq: number): TokenFrame {
  return { type: "token", seq, stream: "s-1", text: `t${seq}` };
}

const pings = (transport: FakeTransport | undefined) =>
  (transport?.sent ?? []).filter(
    (frame): frame is Extract<ClientFrame, { type: "ping" }> => frame.type === "ping",
  );

function setup(options: Partial<ClientOptions> = {}) {
  const network = new FakeNetwork();
  const clock = new FakeClock();
  const client = new RtClient({
    room: "lobby",
    createTransport: network.factory,
    clock,
    backoff: { baseMs: 100, maxMs: 1_000, random: () => 0.5 },
    pingIntervalMs: 1_000,
    pingTimeoutMs: 300,
    ...options,
  });
  const reasons: string[] = [];
  client.on("state", (info) => {
    if (info.reason) reasons.push(info.reason);
  });
  client.connect();
  return { network, clock, client, reasons };
}

describe("RtClient liveness", () => {
  test("pings with an id at each interval while connected, none before the welcome", () => {
    const { network, clock } = setup({ welcomeTimeoutMs: 3_000 });
    clock.advance(5_000);
    assert.equal(network.transports.length, 2, "the WebSocket timed out into SSE");
    assert.deepEqual(pings(network.last), []);
    network.last.deliver(welcome(0));
    clock.advance(999);
    assert.deepEqual(pings(network.last), []);
    clock.advance(1);
    network.last.deliver({ type: "pong", id: pings(network.last)[0]?.id });
    clock.advance(1_000);
    const sent = pings(network.last);
    assert.equal(sent.length, 2);
    assert.ok(sent.every((ping) => typeof ping.id === "string" && ping.id.length > 0));
    assert.notEqual(sent[0]?.id, sent[1]?.id);
  });

  test("silence after a ping closes the connection and resumes from the last event", () => {
    const { network, clock, client, reasons } = setup();
    const first = network.last;
    first.deliver(welcome(0), token(1), token(2));
    clock.advance(1_000);
    assert.equal(pings(first).length, 1);
    clock.advance(299);
    assert.equal(first.closedByClient, false);
    clock.advance(1);
    assert.equal(first.closedByClient, true);
    assert.equal(client.state, "reconnecting");
    assert.equal(reasons.at(-1), "the server stopped answering");
    clock.advance(1_000);
    assert.equal(network.transports.length, 2);
    assert.deepEqual(network.last.request.hello.since, { epoch: "e1", seq: 2 });
    network.last.deliver(welcome(2, true));
    assert.equal(client.state, "open");
  });

  test("any frame after a ping counts as an answer, not only the pong", () => {
    const { network, clock } = setup();
    network.last.deliver(welcome(0));
    for (let seq = 1; seq <= 10; seq++) {
      clock.advance(1_000);
      network.last.deliver(token(seq));
    }
    assert.equal(network.last.closedByClient, false);
    assert.equal(network.transports.length, 1);
  });

  test("a later ping does not put off the deadline of an unanswered one", () => {
    const { network, clock } = setup({ pingIntervalMs: 100, pingTimeoutMs: 250 });
    network.last.deliver(welcome(0));
    clock.advance(349);
    assert.equal(pings(network.last).length, 3);
    assert.equal(network.last.closedByClient, false);
    clock.advance(1);
    assert.equal(network.transports[0]?.closedByClient, true);
  });

  test("over SSE the same check applies: the pong comes back on the event stream", () => {
    const { network, clock } = setup({ transport: "sse" });
    const sse = network.last;
    assert.equal(sse.kind, "sse");
    sse.deliver(welcome(0));
    clock.advance(1_000);
    assert.equal(pings(sse).length, 1);
    clock.advance(300);
    assert.equal(sse.closedByClient, true);
    assert.equal(network.transports.length, 1);
    clock.advance(1_000);
    assert.equal(network.last.kind, "sse");
  });

  test("stops when the connection ends, and a ping interval of 0 sends none", () => {
    const { network, clock, client } = setup();
    network.last.deliver(welcome(0));
    client.close();
    assert.deepEqual(clock.pending(), []);
    const quiet = setup({ pingIntervalMs: 0 });
    quiet.network.last.deliver(welcome(0));
    quiet.clock.advance(600_000);
    assert.deepEqual(pings(quiet.network.last), []);
    assert.equal(quiet.network.transports.length, 1);
  });

  test("a drop clears the ping timers until the next welcome", () => {
    const { network, clock } = setup();
    network.last.deliver(welcome(0));
    clock.advance(500);
    network.last.drop();
    // Only the reconnect waits now; no ping or deadline of the old connection is left.
    assert.deepEqual(clock.pending(), [50]);
  });
});
