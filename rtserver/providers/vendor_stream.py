"""The part of ``stream()`` every vendor SDK provider shares: read events, finish, map failures.

A vendor module supplies what differs: how to open its streaming request, a reader that turns
its events into deltas and says whether the reply was complete, and how its SDK's exceptions
become :class:`ProviderError`. Everything else is here, once: the response is closed however
the iteration ends (cancel included), and every failure is logged and mapped exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, TypeVar

from rtserver.errors import ProviderError
from rtserver.providers import errors
from rtserver.providers.base import Delta, FinishDelta

EventT = TypeVar("EventT")
EventT_co = TypeVar("EventT_co", covariant=True)
EventT_contra = TypeVar("EventT_contra", contravariant=True)


class EventStream(Protocol[EventT_co]):
    """An SDK's streaming response: iterated for events, and closed by ``async with``."""

    def __aiter__(self) -> AsyncIterator[EventT_co]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class EventReader(Protocol[EventT_contra]):
    """Turns one vendor's stream events into deltas."""

    def read(self, event: EventT_contra) -> list[Delta]:
        """The deltas one event carries (often none)."""
        ...

    def finish(self) -> FinishDelta:
        """Why the reply ended; raises ``errors.ended_early()`` if it never said it had."""
        ...


@dataclass(frozen=True, slots=True)
class Upstream:
    """The configured model a stream is for, as our messages and the operator's log name it."""

    #: rtserver's id of the model (``[[models]] id``), which the operator knows it by.
    model_id: str
    #: The vendor's name of the model.
    model: str
    base_url: str
    key_env: str | None


class ErrorMapper(Protocol):
    """A vendor's mapping of its SDK's exceptions to our errors."""

    def __call__(self, exc: Exception, *, upstream: Upstream, started: bool) -> ProviderError: ...


@dataclass(frozen=True, slots=True)
class Vendor:
    """What the shared stream needs to know about one vendor's SDK."""

    #: The name the operator's log uses for this vendor.
    name: str
    map_error: ErrorMapper
    #: The log line's detail for an SDK exception: its kind and ids, and for an HTTP error the
    #: URL that answered; never its message text.
    describe: Callable[[Exception], str]
    #: The log line's detail when the stream ended without the vendor's end-of-reply marker.
    incomplete: str


async def stream_deltas(
    vendor: Vendor,
    *,
    upstream: Upstream,
    open_stream: Callable[[], Awaitable[EventStream[EventT]]],
    reader: EventReader[EventT],
) -> AsyncGenerator[Delta, None]:
    """Open the vendor's stream, yield its deltas, then its finish; fail only with ProviderError.

    Nothing is sent until the first iteration. Closing this iterator (or cancelling its
    consumer) leaves the ``async with`` at once, which closes the HTTP response upstream.
    """
    # A connection failure after the first event is a broken stream, not an unreachable server.
    started = False
    try:
        events = await open_stream()
        async with events:
            async for event in events:
                started = True
                for delta in reader.read(event):
                    yield delta
        yield reader.finish()
    except ProviderError as exc:
        _log(vendor, upstream, exc, vendor.incomplete)
        raise
    except Exception as exc:
        mapped = vendor.map_error(exc, upstream=upstream, started=started)
        _log(vendor, upstream, mapped, vendor.describe(exc))
        raise mapped from None


def _log(vendor: Vendor, upstream: Upstream, mapped: ProviderError, detail: str) -> None:
    errors.log_failure(
        vendor.name,
        model_id=upstream.model_id,
        model=upstream.model,
        base_url=upstream.base_url,
        mapped=mapped,
        detail=detail,
    )
