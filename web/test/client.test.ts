import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { RtClient, type ClientOptions, type ConnectionInfo } from "../src/client/client.js";
import type {
  MessageFrame,
  PromptFrame,
  RoomEvent,
  TokenFrame,
  WelcomeFrame,
} from "../src/client/frames.js";
import { FakeClock, FakeNetwork } from "./fakes.js";

function welcome(
  epoch: string,
  seq: number,
  resumed = false,
  extra: Partial<WelcomeFrame> = {},
): WelcomeFrame {
  return {
    type: "welcome",
    session: "sess",
    participant: { id: "u-1", name: "Ada" },
    room: "lobby",
    epoch,
    seq,
    resumed,
    models: [{ id: "demo", label: "Demo", provider: "demo" }],
    participants: [],
    messages: [],
    streams: [],
    ...extra,
  };
}

function token(seq: number, text = `t${seq}`): TokenFrame {
  return { type: "token", seq, stream: "s-1", text };
}

function message(seq: number, promptId: string): MessageFrame {
  return {
    type: "message",
    seq,
    id: `m-${seq}`,
    author: { id: "u-1", name: "Ada" },
    text: "hi",
    prompt_id: promptId,
    ts: 1,
  };
}

/** A client on a fake network, with every room event it emits recorded. */
function setup(options: Partial<ClientOptions> = {}) {
  const network = new FakeNetwork();
  const clock = new FakeClock();
  const client = new RtClient({
    room: "lobby",
    name: "Ada",
    createTransport: network.factory,
    clock,
    backoff: { baseMs: 100, maxMs: 1_000, random: () => 0.5 },
    ...options,
  });
  const events: RoomEvent[] = [];
  const states: ConnectionInfo[] = [];
  const types = [
    "message",
    "stream_start",
    "token",
    "tool_call",
    "stream_end",
    "tool_result",
    "tool_approval",
    "tool_decision",
  ] as const;
  for (const type of types) {
    client.on(type, (event) => events.push(event));
  }
  client.on("state", (info) => states.push(info));
  client.connect();
  return { network, clock, client, events, states };
}

const seqs = (events: RoomEvent[]) => events.map((event) => event.seq);

describe("RtClient connection", () => {
  test("says hello over a WebSocket and opens on welcome", () => {
    const { network, client, states } = setup({ token: "secret" });
    assert.equal(network.last.kind, "websocket");
    assert.deepEqual(network.last.request.hello, { type: "hello", name: "Ada", token: "secret" });
    assert.equal(client.state, "connecting");
    network.last.deliver(welcome("e1", 5));
    assert.equal(client.state, "open");
    assert.deepEqual(client.since, { epoch: "e1", seq: 5 });
    assert.equal(states.at(-1)?.transport, "websocket");
  });

  test("rejects a room id the server would refuse", () => {
    assert.throws(() => new RtClient({ room: "no spaces" }), RangeError);
  });

  test("resumes from the last event seen, dropping replayed duplicates", () => {
    const { network, clock, events } = setup();
    network.last.deliver(welcome("e1", 0), token(1), token(2), token(3));
    network.last.drop({ code: 1006 });
    clock.advance(1_000);
    assert.equal(network.transports.length, 2);
    assert.deepEqual(network.last.request.hello.since, { epoch: "e1", seq: 3 });
    // A server may replay from before `since`; the client must not show those twice.
    network.last.deliver(welcome("e1", 5, true), token(2), token(3), token(4), token(5));
    network.last.deliver(token(6));
    assert.deepEqual(seqs(events), [1, 2, 3, 4, 5, 6]);
  });

  test("ignores events from before its snapshot", () => {
    const { network, events } = setup();
    network.last.deliver(welcome("e1", 10), token(9), token(10), token(11));
    assert.deepEqual(seqs(events), [11]);
  });

  test("a gap in seq makes it reconnect and resume from the last event before the gap", () => {
    const { network, clock, events } = setup();
    network.last.deliver(welcome("e1", 0), token(1), token(3));
    assert.equal(network.transports[0]?.closedByClient, true);
    clock.advance(1_000);
    assert.deepEqual(network.last.request.hello.since, { epoch: "e1", seq: 1 });
    network.last.deliver(welcome("e1", 3, true), token(2), token(3));
    assert.deepEqual(seqs(events), [1, 2, 3]);
  });

  test("a new epoch replaces the snapshot and its numbering", () => {
    const { network, clock, client, events } = setup();
    const welcomes: WelcomeFrame[] = [];
    client.on("welcome", (w) => welcomes.push(w));
    network.last.deliver(welcome("e1", 0), token(1), token(2));
    network.last.drop();
    clock.advance(1_000);
    network.last.deliver(welcome("e2", 1, false), token(1), token(2));
    assert.deepEqual(client.since, { epoch: "e2", seq: 2 });
    assert.equal(welcomes.at(-1)?.resumed, false);
    assert.deepEqual(seqs(events), [1, 2, 2]);
  });

  test("a resumed welcome for another epoch counts as a snapshot", () => {
    const { network, clock, client } = setup();
    const welcomes: WelcomeFrame[] = [];
    client.on("welcome", (w) => welcomes.push(w));
    network.last.deliver(welcome("e1", 4));
    network.last.drop();
    clock.advance(1_000);
    network.last.deliver(welcome("e9", 7, true));
    assert.equal(welcomes.at(-1)?.resumed, false);
    assert.deepEqual(client.since, { epoch: "e9", seq: 7 });
  });

  test("waits with growing, capped backoff while the server is unreachable", () => {
    const { network, clock } = setup({ transport: "websocket" });
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      network.last.drop({ opened: false });
      const [wait] = clock.pending();
      assert.notEqual(wait, undefined);
      waits.push(wait ?? 0);
      clock.advance(wait ?? 0);
    }
    // random() is 0.5: half of 100, 200, 400, 800, then the 1000 ms cap.
    assert.deepEqual(waits, [50, 100, 200, 400, 500, 500]);
    network.last.deliver(welcome("e1", 0));
    network.last.drop();
    assert.deepEqual(clock.pending(), [50]);
  });

  test("stops for good on close code 1008 (auth)", () => {
    const { network, clock, client } = setup();
    network.last.deliver(welcome("e1", 0));
    network.last.drop({ code: 1008, reason: "forbidden" });
    assert.equal(client.state, "closed");
    clock.advance(60_000);
    assert.equal(network.transports.length, 1);
  });

  test("a refused token is reported as denied, with the server's words, and not retried", () => {
    const { network, clock, client, states } = setup({ token: "expired.jwt" });
    assert.equal(network.last.request.hello.token, "expired.jwt");
    network.last.deliver({
      type: "error",
      code: "unauthorized",
      message: "the token has expired: get a new one",
    });
    network.last.drop({ code: 1008, reason: "the token has expired", opened: true });
    assert.equal(client.state, "closed");
    const last = states.at(-1);
    assert.equal(last?.denied, "unauthorized");
    assert.equal(last?.reason, "the token has expired: get a new one");
    clock.advance(600_000);
    assert.equal(network.transports.length, 1);
  });

  test("a refusal that answers one frame (a viewer's prompt) leaves the connection open", () => {
    const { network, client, states } = setup();
    network.last.deliver(welcome("e1", 0));
    network.last.deliver({ type: "error", code: "forbidden", message: "viewer", ref: "p-1" });
    assert.equal(client.state, "open");
    network.last.drop({ code: 1001, reason: "restart" });
    assert.equal(client.state, "reconnecting");
    assert.equal(states.at(-1)?.denied, undefined);
  });

  test("close() ends the connection and any pending retry", () => {
    const { network, clock, client } = setup();
    network.last.drop({ opened: false });
    network.last.drop({ opened: false });
    client.close();
    clock.advance(60_000);
    assert.equal(network.transports.length, 2);
    assert.equal(client.state, "closed");
  });

  test("callbacks of a replaced transport are ignored", () => {
    const { network, clock, events } = setup();
    const first = network.last;
    first.deliver(welcome("e1", 0));
    first.drop();
    clock.advance(1_000);
    first.deliver(token(1));
    first.drop();
    assert.deepEqual(events, []);
    assert.equal(network.transports.length, 2);
  });
});

describe("RtClient fallback to SSE", () => {
  test("a WebSocket that cannot connect is followed at once by SSE", () => {
    const { network, client } = setup();
    network.last.drop({ code: 1006, opened: false });
    assert.equal(network.transports.length, 2);
    assert.equal(network.last.kind, "sse");
    network.last.deliver(welcome("e1", 0));
    assert.equal(client.transport, "sse");
  });

  test("a WebSocket that opens but brings no welcome times out into SSE", () => {
    const { network, clock } = setup({ welcomeTimeoutMs: 3_000 });
    clock.advance(2_999);
    assert.equal(network.transports.length, 1);
    clock.advance(1);
    assert.equal(network.transports[0]?.closedByClient, true);
    assert.equal(network.last.kind, "sse");
  });

  test("after SSE worked, reconnects stay on SSE and resume", () => {
    const { network, clock } = setup();
    network.last.drop({ opened: false });
    network.last.deliver(welcome("e1", 0), token(1));
    network.last.drop();
    clock.advance(1_000);
    assert.equal(network.last.kind, "sse");
    assert.deepEqual(network.last.request.hello.since, { epoch: "e1", seq: 1 });
  });

  test("when SSE fails too it backs off, then tries the WebSocket again", () => {
    const { network, clock } = setup();
    network.last.drop({ opened: false });
    network.last.drop({ opened: false });
    assert.equal(network.transports.length, 2);
    assert.deepEqual(clock.pending(), [50]);
    clock.advance(50);
    assert.equal(network.last.kind, "websocket");
  });

  test("a forced transport never falls back", () => {
    const { network, clock } = setup({ transport: "websocket" });
    network.last.drop({ opened: false });
    clock.advance(1_000);
    assert.deepEqual(
      network.transports.map((t) => t.kind),
      ["websocket", "websocket"],
    );
  });
});

describe("RtClient sending", () => {
  test("tool events are emitted in seq order and approve() sends the answer", () => {
    const { network, client, events } = setup();
    network.last.deliver(
      welcome("e1", 0),
      { type: "tool_approval", seq: 1, stream: "s", call: "c", name: "rm", args: "{}" },
      { type: "tool_decision", seq: 2, stream: "s", call: "c", allow: false },
      { type: "tool_result", seq: 3, stream: "s", call: "c", name: "rm", duration_ms: 0 },
    );
    assert.deepEqual(
      events.map((event) => event.type),
      ["tool_approval", "tool_decision", "tool_result"],
    );
    const id = client.approve("c", true);
    assert.deepEqual(network.last.sent.at(-1), { type: "approve", id, call: "c", allow: true });
  });

  test("prompts carry an id, models and params", () => {
    const { network, client } = setup();
    network.last.deliver(welcome("e1", 0));
    const id = client.prompt("hello", { models: ["demo"], params: { max_tokens: 5 } });
    assert.deepEqual(network.last.sent.at(-1), {
      type: "prompt",
      id,
      text: "hello",
      models: ["demo"],
      params: { max_tokens: 5 },
    });
  });

  test("a prompt not yet echoed is resent after a reconnect, with the same id", () => {
    const { network, clock, client } = setup();
    network.last.deliver(welcome("e1", 0));
    const lost = client.prompt("one");
    const echoed = client.prompt("two");
    network.last.deliver(message(1, echoed));
    network.last.drop();
    clock.advance(1_000);
    network.last.deliver(welcome("e1", 1, true));
    const resent = network.last.sent.filter((f): f is PromptFrame => f.type === "prompt");
    assert.deepEqual(
      resent.map((f) => f.id),
      [lost],
    );
  });

  test("a prompt refused with an error is not resent", () => {
    const { network, clock, client } = setup();
    network.last.deliver(welcome("e1", 0));
    const id = client.prompt("one");
    network.last.deliver({ type: "error", code: "busy", message: "a turn is running", ref: id });
    network.last.drop();
    clock.advance(1_000);
    network.last.deliver(welcome("e1", 0, true));
    assert.equal(network.last.sent.length, 0);
  });

  test("a prompt found in a snapshot's history is not resent", () => {
    const { network, clock, client } = setup();
    network.last.deliver(welcome("e1", 0));
    const id = client.prompt("one");
    network.last.drop();
    clock.advance(1_000);
    network.last.deliver(
      welcome("e2", 3, false, {
        messages: [
          { id: "m-1", role: "user", text: "one", status: "complete", ts: 1, prompt_id: id },
        ],
      }),
    );
    assert.equal(network.last.sent.length, 0);
  });

  test("cancel and interrupt asked for while disconnected go out after the welcome", () => {
    const { network, client } = setup();
    client.cancel({ model: "demo" });
    client.typing(true);
    const id = client.interrupt({ text: "shorter" });
    assert.equal(network.last.sent.length, 0);
    network.last.deliver(welcome("e1", 0));
    assert.deepEqual(
      network.last.sent.map((f) => f.type),
      ["cancel", "interrupt"],
    );
    assert.deepEqual(network.last.sent[1], { type: "interrupt", id, text: "shorter" });
  });
});

describe("RtClient protocol details", () => {
  test("an unknown room event is ignored but its seq still counts", () => {
    const { network, events } = setup();
    network.last.deliver(welcome("e1", 0), token(1));
    network.last.deliver({ type: "annotation", seq: 2, stream: "s-1", text: "hmm" } as never);
    network.last.deliver(token(3));
    assert.deepEqual(seqs(events), [1, 3]);
    assert.equal(network.transports.length, 1);
  });

  test("a slow consumer (4000) comes back at once, without backoff", () => {
    const { network, clock } = setup({ backoff: { baseMs: 5_000, random: () => 0.5 } });
    network.last.deliver(welcome("e1", 0), token(1));
    network.last.drop({ code: 4000 });
    assert.deepEqual(clock.pending(), [125]);
    clock.advance(125);
    assert.deepEqual(network.last.request.hello.since, { epoch: "e1", seq: 1 });
  });

  test("an interrupt with text is resent after a reconnect; a bare one is not", () => {
    const { network, clock, client } = setup();
    network.last.deliver(welcome("e1", 0));
    client.interrupt();
    const id = client.interrupt({ text: "shorter", models: ["demo"] });
    network.last.drop();
    clock.advance(1_000);
    network.last.deliver(welcome("e1", 0, true));
    assert.deepEqual(network.last.sent, [
      { type: "interrupt", id, text: "shorter", models: ["demo"] },
    ]);
  });
});
