/** Test doubles: a network of fake transports and a clock that moves only when told. */

import type { WireFrame } from "../src/client/codec.js";
import type { Clock } from "../src/client/client.js";
import type { ClientFrame, ServerFrame } from "../src/client/frames.js";
import type {
  CloseInfo,
  ConnectRequest,
  Transport,
  TransportEvents,
  TransportFactory,
  TransportKind,
} from "../src/client/transport.js";

export class FakeTransport implements Transport {
  readonly sent: ClientFrame[] = [];
  closedByClient = false;

  constructor(
    readonly kind: TransportKind,
    readonly request: ConnectRequest,
    private readonly events: TransportEvents,
  ) {}

  send(frame: ClientFrame): void {
    this.sent.push(frame);
  }

  close(): void {
    this.closedByClient = true;
  }

  /** The server sends frames. */
  deliver(...frames: ServerFrame[]): void {
    for (const frame of frames) this.events.onFrame(frame as unknown as WireFrame);
  }

  /** The connection ends from the far side. */
  drop(info: Partial<CloseInfo> = {}): void {
    this.events.onClose({ code: null, reason: "dropped", opened: true, ...info });
  }
}

export class FakeNetwork {
  readonly transports: FakeTransport[] = [];

  readonly factory: TransportFactory = (kind, request, events) => {
    const transport = new FakeTransport(kind, request, events);
    this.transports.push(transport);
    return transport;
  };

  get last(): FakeTransport {
    const transport = this.transports.at(-1);
    if (!transport) throw new Error("no transport was made");
    return transport;
  }
}

interface Timer {
  at: number;
  callback: () => void;
  id: number;
}

export class FakeClock implements Clock {
  time = 0;
  #timers: Timer[] = [];
  #nextId = 1;

  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { at: this.time + ms, callback, id: this.#nextId++ };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((timer) => timer.id !== handle);
  }

  now(): number {
    return this.time;
  }

  /** Delays of the timers waiting now, soonest first. */
  pending(): number[] {
    return this.#timers.map((timer) => timer.at - this.time).sort((a, b) => a - b);
  }

  /** Moves time on, running each timer that falls due, in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = this.#timers
        .filter((timer) => timer.at <= until)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((timer) => timer !== due);
      this.time = due.at;
      due.callback();
    }
    this.time = until;
  }
}
