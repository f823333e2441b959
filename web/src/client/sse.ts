/**
 * The fallback transport for networks that block WebSockets: an EventSource for server frames
 * and one POST per client frame.
 *
 * EventSource would reconnect by itself, but with its own `Last-Event-ID` and without our
 * backoff or fallback decisions, so on the first error it is closed and the client decides.
 */

import { CloseCode } from "./closecodes.js";
import { FrameError, jsonCodec } from "./codec.js";
import type { ClientFrame } from "./frames.js";
import {
  apiUrl,
  type ConnectRequest,
  roomPath,
  type Transport,
  type TransportEvents,
} from "./transport.js";

const UNAUTHORIZED = 401;
const FORBIDDEN = 403;

export interface SseTransportOptions {
  EventSource?: typeof EventSource;
  fetch?: typeof fetch;
}

export function eventsUrl({ server, room, hello }: ConnectRequest): string {
  const url = apiUrl(server, roomPath(room, "events"));
  if (hello.name) url.searchParams.set("name", hello.name);
  if (hello.token) url.searchParams.set("token", hello.token);
  if (hello.since) url.searchParams.set("since", `${hello.since.epoch}:${hello.since.seq}`);
  return url.href;
}

export class SseTransport implements Transport {
  readonly kind = "sse";
  readonly #request: ConnectRequest;
  readonly #events: TransportEvents;
  readonly #source: EventSource;
  readonly #fetch: typeof fetch;
  #session: string | null = null;
  #opened = false;
  #done = false;
  /** POSTs go out one after another so the server sees frames in the order they were sent. */
  #posting: Promise<void> = Promise.resolve();

  constructor(request: ConnectRequest, events: TransportEvents, options: SseTransportOptions = {}) {
    this.#request = request;
    this.#events = events;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const Impl = options.EventSource ?? globalThis.EventSource;
    this.#source = new Impl(eventsUrl(request));
    this.#source.onopen = () => {
      this.#opened = true;
    };
    this.#source.onmessage = (event: MessageEvent<string>) => this.#receive(event.data);
    this.#source.onerror = () => {
      if (this.#opened || this.#done) this.#fail("event stream failed");
      else void this.#explainRefusal();
    };
  }

  send(frame: ClientFrame): void {
    // The hello travelled as query parameters of the event stream.
    if (this.#done || frame.type === "hello") return;
    this.#posting = this.#posting.then(() => this.#post(frame));
  }

  close(): void {
    this.#done = true;
    this.#source.close();
  }

  #receive(data: string): void {
    if (this.#done) return;
    try {
      const frame = jsonCodec.decode(data);
      if (frame.type === "welcome" && typeof frame["session"] === "string") {
        this.#session = frame["session"];
      }
      this.#events.onFrame(frame);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.#fail(`bad frame from server: ${error.message}`);
    }
  }

  async #post(frame: ClientFrame): Promise<void> {
    if (this.#done || this.#session === null) return;
    const url = apiUrl(this.#request.server, roomPath(this.#request.room, "frames"));
    url.searchParams.set("session", this.#session);
    let response: Response;
    try {
      response = await this.#fetch(url.href, {
        method: "POST",
        body: JSON.stringify(frame),
        headers: this.#headers({ "Content-Type": "application/json" }),
      });
    } catch {
      this.#fail("could not send a frame");
      return;
    }
    if (response.ok) {
      await response.body?.cancel();
      return;
    }
    if (response.status === UNAUTHORIZED) {
      await this.#refused(response);
      return;
    }
    if (response.status === FORBIDDEN && !(await this.#answersFrame(response.clone()))) {
      // The session ended (the server let go of the event stream): a new stream brings a new
      // session, and the resume catches up on anything missed.
      this.#fail("the server ended this session");
      return;
    }
    let body: string;
    try {
      body = await response.text();
    } catch {
      this.#fail("could not read the server's answer");
      return;
    }
    if (this.#done) return;
    try {
      this.#events.onFrame(jsonCodec.decode(body));
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.#fail(`frame refused with HTTP ${response.status}`);
    }
  }

  #headers(headers: Record<string, string>): Record<string, string> {
    const token = this.#request.hello.token;
    return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
  }

  /** True when a 403 refuses the frame itself (a viewer's prompt): it names the frame. */
  async #answersFrame(response: Response): Promise<boolean> {
    try {
      const body: unknown = await response.json();
      return typeof body === "object" && body !== null && "ref" in body;
    } catch {
      return false;
    }
  }

  /**
   * EventSource says nothing of why a stream failed to open. Ask once more with fetch: a 401 or
   * 403 is a refusal to report as a WebSocket would (its error frame, then close 1008), so the
   * client stops instead of retrying the same token; anything else is a plain failure.
   */
  async #explainRefusal(): Promise<void> {
    this.#source.close();
    const abort = new AbortController();
    let response: Response | null = null;
    try {
      response = await this.#fetch(eventsUrl(this.#request), { signal: abort.signal });
    } catch {
      response = null;
    }
    if (response && (response.status === UNAUTHORIZED || response.status === FORBIDDEN)) {
      await this.#refused(response);
      return;
    }
    abort.abort();
    this.#fail("event stream failed");
  }

  /** Reports a refusal: its error frame, if readable, then a close with 1008. */
  async #refused(response: Response): Promise<void> {
    if (this.#done) return;
    try {
      this.#events.onFrame(jsonCodec.decode(await response.text()));
    } catch {
      // No readable frame: the close alone says it.
    }
    if (this.#done) return;
    this.#done = true;
    this.#source.close();
    this.#events.onClose({
      code: CloseCode.POLICY_VIOLATION,
      reason: `refused with HTTP ${response.status}`,
      opened: this.#opened,
    });
  }

  #fail(reason: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#source.close();
    this.#events.onClose({ code: null, reason, opened: this.#opened });
  }
}
