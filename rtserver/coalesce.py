"""A room's token coalescing: a fast stream's tokens gathered into fewer, larger ``token`` frames.

Each delivered frame costs a socket write per participant, whatever it holds: gathering the
tokens a stream sends within ``[limits] token_flush_ms`` into one frame divides that cost by the
tokens per window, for at most the window in added latency. One frame never holds two streams.
Pure apart from the loop's timer; the room decides when else to flush (before any other event,
before a snapshot).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rtserver.frames import TokenEvent


class _Gathered:
    """One stream's tokens waiting for the flush."""

    __slots__ = ("emitted_us", "parts")

    def __init__(self, first: TokenEvent) -> None:
        self.parts = [first.text]
        #: The first token's stamp: the frame's latency is that of its oldest token.
        self.emitted_us = first.emitted_us


class TokenCoalescer:
    """Gathers token events per stream for up to ``window_s``, then emits one event per stream.

    ``emit(stream, text, emitted_us)`` publishes one frame; the room numbers it then, so the
    seqs of coalesced frames stay contiguous with every other event.
    """

    __slots__ = ("_emit", "_gathered", "_timer", "_window_s")

    def __init__(self, *, window_s: float, emit: Callable[[str, str, int | None], None]) -> None:
        self._window_s = window_s
        self._emit = emit
        self._gathered: dict[str, _Gathered] = {}
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> bool:
        """True while some stream has tokens not yet emitted."""
        return bool(self._gathered)

    def add(self, token: TokenEvent) -> None:
        """Gather ``token``; the window starts with the first token gathered since a flush."""
        gathered = self._gathered.get(token.stream)
        if gathered is None:
            self._gathered[token.stream] = _Gathered(token)
        else:
            gathered.parts.append(token.text)
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._window_s, self.flush)

    def flush(self) -> None:
        """Emit every stream's gathered tokens now, streams in the order their tokens began."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        gathered, self._gathered = self._gathered, {}
        for stream, tokens in gathered.items():
            self._emit(stream, "".join(tokens.parts), tokens.emitted_us)

    def close(self) -> None:
        """Emit what is gathered and stop the timer."""
        self.flush()
