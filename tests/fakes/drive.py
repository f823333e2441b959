"""Running a provider the way the generation task does, and looking at what came out."""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass, field

from rtserver.errors import ProviderError
from rtserver.providers.base import (
    ChatTurn,
    Delta,
    FinishDelta,
    GenerationRequest,
    Provider,
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
