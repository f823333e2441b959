"""Running a provider the way the generation task does, and looking at what came out."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field

from rtserver.errors import ProviderError
from rtserver.providers.base import (
    ChatTurn,
    Delta,
    FinishDelta,
    GenerationRequest,
    Provider,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageDelta,
)


@dataclass
class Outcome:
    """Every delta a stream yielded, and the error that ended it, if one did."""

    deltas: list[Delta] = field(default_factory=list)
    error: ProviderError | None = None

    @property
    def text(self) -> str:
        return "".join(d.text for d in self.deltas if isinstance(d, TextDelta))

    @property
    def reasoning(self) -> str:
        return "".join(d.text for d in self.deltas if isinstance(d, ReasoningDelta))

    @property
    def usage(self) -> UsageDelta | None:
        usages = [d for d in self.deltas if isinstance(d, UsageDelta)]
        return usages[-1] if usages else None

    @property
    def finish(self) -> str | None:
        finishes = [d.reason for d in self.deltas if isinstance(d, FinishDelta)]
        return finishes[-1] if finishes else None

    def tool_calls(self) -> dict[str, tuple[str | None, str]]:
        """Each call's name and whole arguments, as a consumer would put them together."""
        calls: dict[str, tuple[str | None, str]] = {}
        for d in self.deltas:
            if isinstance(d, ToolCallDelta):
                name, args = calls.get(d.call, (None, ""))
                calls[d.call] = (d.name or name, args + d.args)
        return calls


def ask(
    text: str = "hello",
    *,
    history: tuple[ChatTurn, ...] = (),
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> GenerationRequest:
    """A request whose last turn is the user's ``text``."""
    return GenerationRequest(
        messages=(*history, ChatTurn("user", text)),
        temperature=temperature,
        max_tokens=max_tokens,
    )


async def collect(provider: Provider, request: GenerationRequest | None = None) -> Outcome:
    """Iterate the stream to its end, as ``generation.py`` does, keeping a ProviderError."""
    outcome = Outcome()
    try:
        async with aclosing(provider.stream(request or ask())) as deltas:
            async for delta in deltas:
                outcome.deltas.append(delta)
    except ProviderError as exc:
        outcome.error = exc
    return outcome


async def collect_and_close(
    provider: Provider, request: GenerationRequest | None = None
) -> Outcome:
    """:func:`collect` with a provider made for one test, closing it however the stream ends."""
    try:
        return await collect(provider, request)
    finally:
        await provider.aclose()


async def cancel_after_first_delta(provider: Provider) -> tuple[asyncio.Task[None], float]:
    """Stream in a task as the generation task does and cancel it once a delta has arrived.

    Returns the cancelled task (not yet awaited) and the loop time of the cancel.
    """
    first_delta = asyncio.Event()

    async def consume() -> None:
        async with aclosing(provider.stream(ask())) as deltas:
            async for _ in deltas:
                first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), 5)
    cancelled_at = asyncio.get_running_loop().time()
    task.cancel()
    return task, cancelled_at


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs.

    The socket stays bound without listening, so no other test can take the port meanwhile
    (a port freed and named later could be anyone's by the time it is used).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
