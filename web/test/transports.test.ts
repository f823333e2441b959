import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { WireFrame } from "../src/client/codec.js";
import { eventsUrl, SseTransport } from "../src/client/sse.js";
import type { CloseInfo } from "../src/client/transport.js";
import { webSocketUrl } from "../src/client/websocket.js";

describe("URLs", () => {
  test("WebSocket URLs follow the server's scheme and path prefix", () => {
    assert.equal(
      webSocketUrl("http://127.0.0.1:8080", "lobby"),
      "ws://127.0.0.1:8080/v1/rooms/lobby/ws",
    );
    assert.equal(
      webSocketUrl("https://chat.example/rt/", "a_b-c"),
      "wss://chat.example/rt/v1/rooms/a_b-c/ws",
    );
  });

  test("the event stream carries name, token and since as query parameters", () => {
    const url = new URL(
      eventsUrl({
        server: "http://h:1",
        room: "lobby",
        hello: { type: "hello", name: "Zoë & co", token: "t", since: { epoch: "ep-1", seq: 42 } },
      }),
    );
    assert.equal(url.pathname, "/v1/rooms/lobby/events");
    assert.equal(url.searchParams.get("name"), "Zoë & co");
    assert.equal(url.searchParams.get("since"), "ep-1:42");
  });
});

/** Stands in for the browser's EventSource: the test makes it open, deliver and fail. */
class FakeEventSource {
  static last: FakeEventSource | null = null;
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;

  constructor(readonly url: string) {
    FakeEventSource.last = this;
  }

  close(): void {
    this.closed = true;
  }
}

interface Post {
  url: string;
  body: string;
  contentType: string | null;
  authorization: string | null;
}

function sse(answer: (post: Post) => Response, token?: string) {
  const posts: Post[] = [];
  const frames: WireFrame[] = [];
  const closes: CloseInfo[] = [];
  const fakeFetch = async (input: string | URL | Request, init?: RequestInit) => {
    const post = {
      url: String(input),
      body: String(init?.body),
      contentType: new Headers(init?.headers).get("content-type"),
      authorization: new Headers(init?.headers).get("authorization"),
    };
    posts.push(post);
    return answer(post);
  };
  const transport = new SseTransport(
    {
      server: "http://h:1",
      room: "lobby",
      hello: token ? { type: "hello", name: "Ada", token } : { type: "hello", name: "Ada" },
    },
    { onFrame: (frame) => frames.push(frame), onClose: (info) => closes.push(info) },
    {
      EventSource: FakeEventSource as unknown as typeof EventSource,
      fetch: fakeFetch as typeof fetch,
    },
  );
  const source = FakeEventSource.last;
  assert.ok(source);
  source.onopen?.();
  source.onmessage?.({ data: JSON.stringify({ type: "welcome", session: "sess-9" }) });
  return { transport, source, posts, frames, closes };
}

/** Resolve once `condition()` holds, checking after every turn of the event loop; fail after 5 s. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

describe("SseTransport", () => {
  test("posts client frames as JSON, in order, with the welcome's session", async () => {
    const { transport, posts } = sse(() => new Response('{"ok":true}', { status: 202 }));
    transport.send({ type: "hello" });
    transport.send({ type: "typing", active: true });
    transport.send({ type: "prompt", id: "p-1", text: "hi" });
    await until(() => posts.length >= 2, "two frames are posted");
    assert.deepEqual(
      posts.map((p) => JSON.parse(p.body).type),
      ["typing", "prompt"],
    );
    assert.equal(posts[0]?.url, "http://h:1/v1/rooms/lobby/frames?session=sess-9");
    assert.equal(posts[0]?.contentType, "application/json");
  });

  test("an error answer to a POST is handed on as an error frame", async () => {
    const error = { type: "error", code: "busy", message: "a turn is running", ref: "p-1" };
    const { transport, frames, closes } = sse(
      () => new Response(JSON.stringify(error), { status: 503 }),
    );
    transport.send({ type: "prompt", id: "p-1", text: "hi" });
    await until(() => frames.length > 1, "the answer is handed on");
    assert.deepEqual(frames.at(-1), error);
    assert.deepEqual(closes, []);
  });

  test("a 403 to a POST means the session ended: the transport closes so the client reconnects", async () => {
    const { transport, source, closes } = sse(() => new Response("{}", { status: 403 }));
    transport.send({ type: "cancel" });
    await until(() => closes.length > 0, "the transport closes");
    assert.equal(closes.length, 1);
    assert.equal(source.closed, true);
  });

  test("with a token, each POST carries it as a Bearer token", async () => {
    const { transport, posts } = sse(() => new Response('{"ok":true}', { status: 202 }), "tk");
    transport.send({ type: "ping", id: "x" });
    await until(() => posts.length > 0, "the frame is posted");
    assert.equal(posts[0]?.authorization, "Bearer tk");
  });

  test("a 401 to a POST is a refused token: its frame, then a close like 1008", async () => {
    const error = { type: "error", code: "unauthorized", message: "the token has expired" };
    const { transport, source, frames, closes } = sse(
      () => new Response(JSON.stringify(error), { status: 401 }),
      "old",
    );
    transport.send({ type: "ping" });
    await until(() => closes.length > 0, "the transport closes");
    assert.deepEqual(frames.at(-1), error);
    assert.equal(closes[0]?.code, 1008);
    assert.equal(source.closed, true);
  });

  test("a 403 naming the frame (a viewer's prompt) is handed on and the session goes on", async () => {
    const error = { type: "error", code: "forbidden", message: "viewer", ref: "p-1" };
    const { transport, frames, closes } = sse(
      () => new Response(JSON.stringify(error), { status: 403 }),
    );
    transport.send({ type: "prompt", id: "p-1", text: "hi" });
    await until(() => frames.length > 1, "the answer is handed on");
    assert.deepEqual(frames.at(-1), error);
    assert.deepEqual(closes, []);
  });

  test("an event stream that fails to open with 401 reports the refusal, not a failure", async () => {
    const error = { type: "error", code: "unauthorized", message: "no token" };
    const frames: WireFrame[] = [];
    const closes: CloseInfo[] = [];
    const asked: string[] = [];
    new SseTransport(
      { server: "http://h:1", room: "lobby", hello: { type: "hello", token: "bad" } },
      { onFrame: (frame) => frames.push(frame), onClose: (info) => closes.push(info) },
      {
        EventSource: FakeEventSource as unknown as typeof EventSource,
        fetch: (async (input: string | URL | Request) => {
          asked.push(String(input));
          return new Response(JSON.stringify(error), { status: 401 });
        }) as typeof fetch,
      },
    );
    FakeEventSource.last?.onerror?.();
    await until(() => closes.length > 0, "the refusal closes the transport");
    assert.equal(asked[0], "http://h:1/v1/rooms/lobby/events?token=bad");
    assert.deepEqual(frames, [error]);
    assert.equal(closes[0]?.code, 1008);
  });

  test("an event stream error closes it instead of letting EventSource retry on its own", () => {
    const { source, closes } = sse(() => new Response(null, { status: 202 }));
    source.onerror?.();
    source.onerror?.();
    assert.equal(source.closed, true);
    assert.deepEqual(closes, [{ code: null, reason: "event stream failed", opened: true }]);
  });
});
