"""A room's token coalescing: a fast stream's tokens gathered into fewer, larger ``token`` frames.

Each delivered frame costs a socket write per participant, whatever it holds: gathering the
tokens a stream sends within ``[limits] token_flush_ms`` into one frame divides that cost by the
tokens per window, for at most the window in added latency, and none for a stream slower than
one token a window. One frame never holds two streams, nor answer text and reasoning together:
a stream's reasoning is gathered like its tokens, into ``reasoning`` frames of its own, and a
switch from one to the other sends what was gathered first, so the stream's order holds.
Pure: its timer comes from the room's scheduler. The room decides when else to flush (before any
other event, before a snapshot).
"""

from __future__ import annotations

from collections.abc import Callable

from rtserver.protocol.frames import ReasoningEvent, TokenEvent
from rtserver.room.scheduler import LOOP, Scheduler, Timer

#: ``emit_reasoning(stream, parts)`` publishes one ``reasoning`` frame.
EmitReasoning = Callable[[str, list[str]], None]


def _cannot_emit_reasoning(stream: str, parts: list[str]) -> None:
    raise RuntimeError(
        f"stream {stream}: reasoning given to a coalescer made without emit_reasoning"
    )


class _Gathered:
    """One stream's tokens (or reasoning) waiting for the flush."""

    __slots__ = ("emitted_us", "parts", "reasoning")

    def __init__(self, first: TokenEvent | ReasoningEvent) -> None:
        self.parts = [first.text]
        self.reasoning = isinstance(first, ReasoningEvent)
        #: The first token's stamp: the frame's latency is that of its oldest token.
        self.emitted_us = first.emitted_us if isinstance(first, TokenEvent) else None


class TokenCoalescer:
    """Sends at most one frame per stream per ``window_s``, gathering the tokens in between.

    A token that comes when its stream sent nothing within the window goes out at once, so a
    stream slower than one token a window is not delayed at all; tokens that come sooner are
    gathered and go out together when the window ends. ``emit(stream, parts, emitted_us)``
    publishes one frame (``emit_reasoning(stream, parts)`` one of reasoning); the room numbers
    it then, so seqs stay contiguous with every other event.
    """

    __slots__ = (
        "_emit",
        "_emit_reasoning",
        "_gathered",
        "_scheduler",
        "_sent_at",
        "_timer",
        "_window_s",
    )

    def __init__(
        self,
        *,
        window_s: float,
        emit: Callable[[str, list[str], int | None], None],
        emit_reasoning: EmitReasoning | None = None,
        scheduler: Scheduler = LOOP,
    ) -> None:
        self._window_s = window_s
        self._scheduler = scheduler
        self._emit = emit
        self._emit_reasoning = emit_reasoning or _cannot_emit_reasoning
        self._gathered: dict[str, _Gathered] = {}
        #: When each stream last sent a frame, by the scheduler's clock.
        self._sent_at: dict[str, float] = {}
        self._timer: Timer | None = None

    @property
    def pending(self) -> bool:
        """True while some stream has tokens not yet emitted."""
        return bool(self._gathered)

    def add(self, token: TokenEvent | ReasoningEvent) -> bool:
        """Send ``token`` now if its stream is quiet (True), else gather it for the window."""
        stream = token.stream
        gathered = self._gathered.get(stream)
        if gathered is not None:
            if gathered.reasoning == isinstance(token, ReasoningEvent):
                gathered.parts.append(token.text)
                return False
            # Answer after reasoning (or back): the other kind goes first, as it came first.
            # The window's timer is already set, for what is gathered from here on.
            del self._gathered[stream]
            self._send(stream, gathered, self._now())
            self._gathered[stream] = _Gathered(token)
            return False
        now = self._now()
        sent_at = self._sent_at.get(stream)
        if sent_at is None or now - sent_at >= self._window_s:
            self._send(stream, _Gathered(token), now)
            return True
        self._gathered[stream] = _Gathered(token)
        if self._timer is None:
            self._timer = self._scheduler.call_later(sent_at + self._window_s - now, self.flush)
        return False

    def flush(self) -> None:
        """Emit every stream's gathered tokens now, streams in the order their tokens began."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        gathered, self._gathered = self._gathered, {}
        now = self._now()
        for stream, tokens in gathered.items():
            self._send(stream, tokens, now)

    def _send(self, stream: str, gathered: _Gathered, now: float) -> None:
        self._sent_at[stream] = now
        if gathered.reasoning:
            self._emit_reasoning(stream, gathered.parts)
        else:
            self._emit(stream, gathered.parts, gathered.emitted_us)

    def forget(self, stream: str) -> None:
        """The stream has ended: drop what is kept of it (its tokens were flushed before)."""
        self._sent_at.pop(stream, None)

    def close(self) -> None:
        """Emit what is gathered and stop the timer."""
        self.flush()
        self._sent_at.clear()

    def _now(self) -> float:
        # The clock the timers run on.
        return self._scheduler.now()
