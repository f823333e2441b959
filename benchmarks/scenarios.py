"""What `make bench` measures: the scenarios, and the servers each one runs against.

A scenario is one room: ``participants`` connections, one model streaming ``turns`` replies of
``tokens`` tokens each at ``rate`` tokens a second (0: as fast as the server goes), one after
another. Every scenario runs each of its servers in a fresh process, repetitions interleaved.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.loadgen import Mode, ServerKind

#: rtserver's demo model rate that stands for "as fast as possible": it never sleeps.
UNPACED_TOKENS_PER_S = 1e9


@dataclass(frozen=True, slots=True)
class Server:
    """One server to run: its kind, and for rtserver the coalescing it is asked for."""

    label: str
    kind: ServerKind
    #: ``[limits] token_flush_ms`` for rtserver; None leaves it out (servers without it).
    token_flush_ms: float | None = None


BARE = Server("bare", "bare")
SOCKETIO = Server("socketio", "socketio")
RTSERVER = Server("rtserver", "rtserver", token_flush_ms=0)


def coalescing(flush_ms: float) -> Server:
    return Server(f"rtserver flush {flush_ms:g} ms", "rtserver", token_flush_ms=flush_ms)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    mode: Mode
    participants: int
    rate: float = 0.0
    tokens: int = 100
    turns: int = 1
    #: Part of the quick set (``--quick``).
    quick: bool = False
    #: Also run rtserver with coalescing (``--token-flush-ms``).
    coalesce: bool = False

    def servers(self, flush_ms: float) -> tuple[Server, ...]:
        base = (BARE, SOCKETIO, RTSERVER)
        return (*base, coalescing(flush_ms)) if self.coalesce else base

    def run_timeout_s(self) -> float:
        streaming = self.turns * self.tokens / self.rate if self.rate else 0.0
        # Up to 200 µs of a slow server per delivered frame, on top of the paced time.
        return 30.0 + 3 * streaming + self.participants * self.turns * self.tokens / 5_000

    def join_timeout_s(self) -> float:
        return 30.0 + self.participants / 100


SCENARIOS = (
    Scenario("100x100", "stream", 100, rate=100, turns=3, quick=True),
    Scenario("500x40", "stream", 500, rate=40, turns=2, quick=True),
    Scenario("1000x20", "stream", 1000, rate=20, quick=True),
    Scenario("5000x20", "stream", 5000, rate=20),
    Scenario("100xmax", "stream", 100, turns=5, quick=True),
    Scenario("1000xmax", "stream", 1000, turns=2),
    Scenario("1000x200", "stream", 1000, rate=200, turns=2, coalesce=True),
    Scenario("idle1000", "idle", 1000, quick=True),
    Scenario("idle5000", "idle", 5000),
    Scenario("first-token", "first_token", 1, rate=1000, tokens=5, turns=20, quick=True),
)
