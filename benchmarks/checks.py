"""Checking every delivered frame, so that a fast but wrong run cannot pass.

Each connection keeps a :class:`ConnectionLog`: room events must arrive with ``seq`` rising by
exactly one from the head its welcome named (a gap is a missing frame, a lower seq a duplicate or
reordered one); tokens of a stream must come before its ``stream_end``. After the run,
:func:`verify_run` compares every connection's text of every stream with the text the source
really sent, requires the same frames everywhere, and only then reports figures. Pure code.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class FrameCheckError(Exception):
    """A delivered frame was missing, duplicated, out of order or wrong."""


@dataclass(slots=True)
class StreamLog:
    """One stream as one connection saw it."""

    parts: list[str] = field(default_factory=list)
    #: Token count announced by its ``stream_end``; None while it runs.
    ended_tokens: int | None = None


class ConnectionLog:
    """Every room event one connection received, checked as it arrives."""

    __slots__ = ("arrivals", "latencies", "name", "next_seq", "streams")

    def __init__(self, name: str, *, next_seq: int) -> None:
        self.name = name
        self.next_seq = next_seq
        self.streams: dict[str, StreamLog] = {}
        #: Unix microseconds at which each token frame arrived, in arrival order.
        self.arrivals = array("q")
        #: Microseconds from the source's stamp to arrival, for stamped token frames.
        self.latencies = array("q")

    def room_event(self, seq: int) -> None:
        """A frame with a ``seq``: it must be the next one."""
        if seq != self.next_seq:
            what = "missing" if seq > self.next_seq else "duplicate or reordered"
            raise FrameCheckError(
                f"{self.name}: expected seq {self.next_seq}, got {seq} ({what} frame)"
            )
        self.next_seq = seq + 1

    def token(self, seq: int, stream: str, text: str, emitted_us: int | None, now_us: int) -> None:
        self.room_event(seq)
        log = self.streams.setdefault(stream, StreamLog())
        if log.ended_tokens is not None:
            raise FrameCheckError(f"{self.name}: token of stream {stream} after its stream_end")
        log.parts.append(text)
        self.arrivals.append(now_us)
        if emitted_us is not None:
            self.latencies.append(now_us - emitted_us)

    def stream_end(self, seq: int, stream: str, tokens: int) -> None:
        self.room_event(seq)
        log = self.streams.setdefault(stream, StreamLog())
        if log.ended_tokens is not None:
            raise FrameCheckError(f"{self.name}: second stream_end of stream {stream}")
        log.ended_tokens = tokens


@dataclass(frozen=True, slots=True)
class Expected:
    """What the source sent on one stream: its whole text and how many tokens."""

    text: str
    tokens: int


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What a checked run delivered, and how fast."""

    token_frames: int
    tokens: int
    latencies_us: Sequence[int]
    #: For each token frame, the spread of its arrival over all connections.
    skews_us: Sequence[int]


def verify_run(
    logs: Sequence[ConnectionLog], expected: Mapping[str, Expected], *, frame_per_token: bool
) -> RunFigures:
    """Check that every connection got every stream whole; raise FrameCheckError if not.

    ``frame_per_token`` (a server that does not coalesce) also requires one frame per token.
    """
    if not logs:
        raise FrameCheckError("no connections to check")
    frames = len(logs[0].arrivals)
    for log in logs:
        _verify_connection(log, expected, frame_per_token=frame_per_token)
        if len(log.arrivals) != frames:
            raise FrameCheckError(
                f"{log.name} got {len(log.arrivals)} token frames, {logs[0].name} got {frames}"
            )
    latencies = array("q")
    for log in logs:
        latencies.extend(log.latencies)
    skews = array(
        "q", (max(col) - min(col) for col in zip(*(log.arrivals for log in logs), strict=True))
    )
    return RunFigures(
        token_frames=frames * len(logs),
        tokens=sum(e.tokens for e in expected.values()) * len(logs),
        latencies_us=latencies,
        skews_us=skews,
    )


def _verify_connection(
    log: ConnectionLog, expected: Mapping[str, Expected], *, frame_per_token: bool
) -> None:
    unknown = set(log.streams) - set(expected)
    if unknown:
        raise FrameCheckError(f"{log.name}: tokens of unexpected streams {sorted(unknown)}")
    for stream, want in expected.items():
        got = log.streams.get(stream)
        if got is None or got.ended_tokens is None:
            raise FrameCheckError(f"{log.name}: stream {stream} did not end")
        if got.ended_tokens != want.tokens:
            raise FrameCheckError(
                f"{log.name}: stream {stream} ended with {got.ended_tokens} tokens, "
                f"the source sent {want.tokens}"
            )
        if frame_per_token and len(got.parts) != want.tokens:
            raise FrameCheckError(
                f"{log.name}: stream {stream} came in {len(got.parts)} frames "
                f"for {want.tokens} tokens"
            )
        if "".join(got.parts) != want.text:
            raise FrameCheckError(
                f"{log.name}: the text of stream {stream} differs from the source"
            )


def percentile(values: Sequence[int], fraction: float) -> int:
    """The nearest-rank percentile (``fraction`` from 0 to 1) of ``values``."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered))
    return ordered[max(0, min(len(ordered), rank) - 1)]
