"""Providers for delivery tests: one that floods, one that reports when its request closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from rtserver.errors import ProviderError
from rtserver.providers.base import Delta, FinishDelta, GenerationRequest, Provider, TextDelta


class Firehose:
    """Sends numbered chunks of ``chunk_bytes`` every millisecond until ``stop`` is set.

    Enough bytes to fill every socket buffer between the server and a client that stopped
    reading, however large the kernel makes them; the test sets ``stop`` once it has seen what
    it waits for. With ``paced_by`` (how many frames the reading client has received so far)
    it never runs more than ``ahead`` chunks ahead of that reader, so the reader never falls
    behind on a slow machine: only the client that stopped reading overflows.
    """

    kind = "demo"

    def __init__(
        self, *, chunk_bytes: int = 16_384, max_chunks: int = 4_000, ahead: int = 16
    ) -> None:
        self.chunk_bytes = chunk_bytes
        self.max_chunks = max_chunks
        self.ahead = ahead
        self.paced_by: Callable[[], int] | None = None
        self.stop = asyncio.Event()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        for n in range(self.max_chunks):
            if self.stop.is_set():
                break
            while self.paced_by is not None and n - self.paced_by() > self.ahead:  # noqa: ASYNC110 - a count, not an event
                await asyncio.sleep(0.001)
            yield TextDelta(f"<{n}>".ljust(self.chunk_bytes, "."))
            await asyncio.sleep(0.001)
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None


class Watched:
    """Passes another provider's deltas through and records when its request is closed."""

    kind = "demo"

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.closed = asyncio.Event()
        self.completed = False

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        try:
            async for delta in self.inner.stream(request):
                yield delta
            self.completed = True
        finally:
            self.closed.set()

    async def aclose(self) -> None:
        await self.inner.aclose()


class Endless:
    """Numbered tokens every ``interval`` seconds until ``done`` is set, then ``complete``.

    A stream that is still running whenever a test needs it to be, however loaded the machine:
    the test, not the clock, decides when it ends.
    """

    kind = "demo"

    def __init__(self, done: asyncio.Event, *, interval: float) -> None:
        self.done = done
        self.interval = interval

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        n = 0
        while not self.done.is_set():
            yield TextDelta(f"{n} ")
            n += 1
            await asyncio.sleep(self.interval)
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None


class FailsMidway:
    """Sends ``text``, then fails as a vendor would, with ``error``."""

    kind = "demo"

    def __init__(self, text: str, error: ProviderError) -> None:
        self.text = text
        self.error = error

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        yield TextDelta(self.text)
        raise self.error

    async def aclose(self) -> None:
        return None


class Recording:
    """Answers ``words`` after ``release`` is set (at once when it is None), recording requests."""

    kind = "demo"

    def __init__(self, *words: str, release: asyncio.Event | None = None) -> None:
        self.words = words or ("ok",)
        self.release = release
        self.requests: list[GenerationRequest] = []

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self.requests.append(request)
        if self.release is not None:
            await self.release.wait()
        for word in self.words:
            yield TextDelta(word)
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None


class Gate:
    """Each request says ``started``, then waits for its own :meth:`release` to finish.

    Records every request, so a test can see what a model was sent, and holds each turn open
    for exactly as long as the test needs: the test, not the clock, decides when it ends.
    """

    kind = "demo"

    def __init__(self, answer: str = "done") -> None:
        self.answer = answer
        self.requests: list[GenerationRequest] = []
        self._releases = asyncio.Semaphore(0)

    def release(self, count: int = 1) -> None:
        """Let ``count`` waiting (or future) requests finish."""
        for _ in range(count):
            self._releases.release()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self.requests.append(request)
        yield TextDelta("started ")
        await self._releases.acquire()
        yield TextDelta(self.answer)
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None
