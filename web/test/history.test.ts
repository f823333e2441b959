import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { RtClient } from "../src/client/client.js";
import { EarlierMessages } from "../src/client/earlier.js";
import type { HistoryMessage, WelcomeFrame } from "../src/client/frames.js";
import { HISTORY_TIMEOUT_MS, type HistoryPage, HistoryError } from "../src/client/history.js";
import { RoomState } from "../src/client/room-state.js";
import { FakeClock, FakeNetwork } from "./fakes.js";

const ada = { id: "u-1", name: "Ada" };

function user(n: number): HistoryMessage {
  const text = `prompt ${n}`;
  return { id: `m-${n}`, role: "user", text, status: "complete", ts: n, author: ada };
}

function answer(n: number, model = "a"): HistoryMessage {
  return {
    id: `r-${n}-${model}`,
    role: "assistant",
    text: `answer ${n} by ${model}`,
    status: "complete",
    ts: n,
    model,
    reply_to: `m-${n}`,
  };
}

/** The room's whole stored history: turns 1 to `count`, each a prompt and one reply. */
function stored(count: number): HistoryMessage[] {
  return Array.from({ length: count }, (_, i) => [user(i + 1), answer(i + 1)]).flat();
}

/** What the server answers for `before` and `limit` over `all`, as rtserver pages it. */
function serverPage(all: HistoryMessage[], before: string | undefined, limit = 50): HistoryPage {
  const end = before === undefined ? all.length : all.findIndex((m) => m.id === before);
  const start = Math.max(0, end - limit);
  const messages = all.slice(start, end);
  return { messages, next: start > 0 ? (messages[0]?.id ?? null) : null };
}

function welcome(messages: HistoryMessage[]): WelcomeFrame {
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
    messages,
    streams: [],
  };
}

/** Message ids in conversation order: each turn's id, then its replies'. */
function ids(state: RoomState): string[] {
  return state.turns.flatMap((turn) => [turn.id, ...turn.replies.map((reply) => reply.id)]);
}

interface Call {
  url: URL;
  init: RequestInit | undefined;
}

/** A fetch that answers from `respond`, recording each request. */
function fakeFetch(respond: (url: URL) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    calls.push({ url, init });
    return respond(url);
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

function client(fetch: typeof globalThis.fetch, clock = new FakeClock()): RtClient {
  return new RtClient({
    server: "http://rt.test/prefix/",
    room: "lobby",
    fetch,
    clock,
    createTransport: new FakeNetwork().factory,
  });
}

describe("RtClient.history", () => {
  test("asks for the page before a message and returns it", async () => {
    const { fetch, calls } = fakeFetch(() => json({ messages: [user(1)], next: null }));
    const page = await client(fetch).history({ before: "m-2", limit: 10 });
    assert.deepEqual(page, { messages: [user(1)], next: null });
    assert.equal(calls.length, 1);
    const url = calls[0]?.url;
    assert.equal(`${url?.origin}${url?.pathname}`, "http://rt.test/prefix/v1/rooms/lobby/messages");
    assert.equal(url?.searchParams.get("before"), "m-2");
    assert.equal(url?.searchParams.get("limit"), "10");
  });

  test("with a token it sends it as a Bearer token, and none without", async () => {
    const { fetch, calls } = fakeFetch(() => json({ messages: [], next: null }));
    const withToken = new RtClient({
      server: "http://rt.test/",
      room: "lobby",
      token: "tk-1",
      fetch,
      clock: new FakeClock(),
      createTransport: new FakeNetwork().factory,
    });
    await withToken.history();
    await client(fetch).history();
    assert.equal(new Headers(calls[0]?.init?.headers).get("authorization"), "Bearer tk-1");
    assert.equal(new Headers(calls[1]?.init?.headers).get("authorization"), null);
  });

  test("without a query it asks for the newest page at the server's page size", async () => {
    const { fetch, calls } = fakeFetch(() => json({ messages: [], next: null }));
    await client(fetch).history();
    assert.equal(calls[0]?.url.search, "");
  });

  test("an error answer rejects with the server's message and the status", async () => {
    const { fetch } = fakeFetch(() =>
      json({ type: "error", code: "not_found", message: "no message m-9 in this room" }, 404),
    );
    await assert.rejects(client(fetch).history({ before: "m-9" }), (error: unknown) => {
      assert.ok(error instanceof HistoryError);
      assert.equal(error.message, "no message m-9 in this room");
      assert.equal(error.status, 404);
      return true;
    });
  });

  test("no answer, or one that is not a page, rejects in words", async () => {
    const down = fakeFetch(() => Promise.reject(new TypeError("Failed to fetch")));
    await assert.rejects(client(down.fetch).history(), /could not reach the server/);
    const odd = fakeFetch(() => json({ messages: [{ id: 3 }], next: null }));
    await assert.rejects(client(odd.fetch).history(), /not a page of messages/);
    const html = fakeFetch(() => new Response("<html>", { status: 502 }));
    await assert.rejects(client(html.fetch).history(), /the server answered HTTP 502/);
    const garbled = fakeFetch(() => new Response("{", { status: 200 }));
    await assert.rejects(client(garbled.fetch).history(), /not a page of messages/);
  });

  test("a request that hangs is given up after the timeout", async () => {
    const clock = new FakeClock();
    let asked = 0;
    const hang = ((_: string | URL | Request, init?: RequestInit) => {
      asked += 1;
      return new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted")));
      });
    }) as typeof globalThis.fetch;
    const page = client(hang, clock).history();
    assert.equal(asked, 1);
    clock.advance(HISTORY_TIMEOUT_MS);
    await assert.rejects(page, /took too long/);
  });
});

describe("RoomState.prependHistory", () => {
  test("puts earlier turns first, in order, and knows when the room starts", () => {
    const all = stored(5);
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome(all.slice(6)));
    assert.equal(state.oldestMessageId, "m-4");
    assert.equal(state.earlier, "unknown");

    const changes = state.prependHistory(serverPage(all, "m-4", 4), state.snapshots);
    assert.deepEqual(
      changes.map((change) => (change.kind === "earlier" ? change.turns.map((t) => t.id) : [])),
      [["m-2", "m-3"]],
    );
    assert.equal(state.earlier, "more");
    assert.equal(state.oldestMessageId, "m-2");
    state.prependHistory(serverPage(all, "m-2", 4), state.snapshots);
    assert.equal(state.earlier, "none");
    assert.deepEqual(ids(state), all.map((m) => m.id));
  });

  test("a reply whose prompt was cut off joins it when an earlier page brings it", () => {
    const all = [user(1), answer(1, "a"), answer(1, "b"), user(2), answer(2, "a")];
    const state = new RoomState(() => 0);
    // The snapshot starts at the second reply to m-1: there is no turn to put it in yet.
    state.applyWelcome(welcome(all.slice(2)));
    assert.equal(state.reply("r-1-b"), undefined);
    assert.equal(state.oldestMessageId, "r-1-b");

    state.prependHistory(serverPage(all, "r-1-b", 1), state.snapshots);
    // That page held only a reply: it waits too.
    assert.equal(state.turns.length, 1);
    state.prependHistory(serverPage(all, "r-1-a", 1), state.snapshots);
    assert.deepEqual(ids(state), ["m-1", "r-1-a", "r-1-b", "m-2", "r-2-a"]);
    assert.equal(state.earlier, "none");
  });

  test("messages already shown are not added twice", () => {
    const all = stored(3);
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome(all.slice(2)));
    const overlapping = { messages: all.slice(0, 4), next: null };
    const changes = state.prependHistory(overlapping, state.snapshots);
    assert.deepEqual(ids(state), all.map((m) => m.id));
    assert.equal(changes.length, 1);
  });

  test("a page asked for before a snapshot is dropped", () => {
    const all = stored(3);
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome(all.slice(4)));
    const asked = state.snapshots;
    state.applyWelcome(welcome(all.slice(2)));
    assert.deepEqual(state.prependHistory(serverPage(all, "m-3"), asked), []);
    assert.deepEqual(ids(state), ["m-2", "r-2-a", "m-3", "r-3-a"]);
    assert.equal(state.earlier, "unknown");
  });
});

describe("EarlierMessages", () => {
  function setup(all: HistoryMessage[], shown: number, limit?: number) {
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome(all.slice(all.length - shown)));
    const { fetch, calls } = fakeFetch((url) =>
      json(
        serverPage(
          all,
          url.searchParams.get("before") ?? undefined,
          Number(url.searchParams.get("limit") ?? 50),
        ),
      ),
    );
    const rt = client(fetch);
    const earlier = new EarlierMessages(state, (query) => rt.history(query), limit);
    return { state, earlier, calls };
  }

  test("loads page after page until the first message, with no duplicate", async () => {
    const all = stored(10);
    const { state, earlier, calls } = setup(all, 4, 6);
    await earlier.check();
    assert.equal(state.earlier, "more");
    // A function, so that the assertion above does not narrow the type for the loop.
    const status = () => state.earlier;
    for (let pages = 0; status() !== "none" && pages < 10; pages++) await earlier.load();
    assert.deepEqual(ids(state), all.map((m) => m.id));
    assert.deepEqual(
      calls.map(({ url }) => [url.searchParams.get("before"), url.searchParams.get("limit")]),
      [
        ["m-9", "1"],
        ["m-9", "6"],
        ["m-6", "6"],
        ["m-3", "6"],
      ],
    );
  });

  test("the check finds out when the snapshot already starts the room", async () => {
    const all = stored(2);
    const { state, earlier } = setup(all, 4);
    await earlier.check();
    assert.equal(state.earlier, "none");
  });

  test("an empty room that the server knows nothing about has no earlier messages", async () => {
    const { state, earlier, calls } = setup([], 0);
    await earlier.check();
    assert.equal(state.earlier, "none");
    assert.equal(calls[0]?.url.searchParams.has("before"), false);
  });

  test("a failure is kept for the view and the next load tries again", async () => {
    const all = stored(4);
    const state = new RoomState(() => 0);
    state.applyWelcome(welcome(all.slice(4)));
    let fail = true;
    const { fetch } = fakeFetch((url) =>
      fail
        ? json({ type: "error", code: "internal", message: "internal error" }, 500)
        : json(serverPage(all, url.searchParams.get("before") ?? undefined)),
    );
    const rt = client(fetch);
    const earlier = new EarlierMessages(state, (query) => rt.history(query));
    await earlier.check();
    // Unsure: the control stays so that the person can try.
    assert.equal(state.earlier, "more");
    assert.deepEqual(await earlier.load(), []);
    assert.equal(earlier.error, "internal error");
    assert.equal(earlier.loading, false);
    fail = false;
    await earlier.load();
    assert.equal(earlier.error, null);
    assert.deepEqual(ids(state), all.map((m) => m.id));
  });

  test("a second load while one runs does nothing", async () => {
    const all = stored(4);
    const { earlier, calls } = setup(all, 2);
    const first = earlier.load();
    assert.equal(earlier.loading, true);
    assert.deepEqual(await earlier.load(), []);
    await first;
    assert.equal(calls.length, 1);
  });
});
