"""One routed stream over several candidate models: the next takes over until the first token.

A candidate that fails (a :class:`ProviderError`: a provider error, a rate limit, a missing key,
a refused connection) before its first token (text, reasoning or a tool call) hands the stream
to the next
candidate; ``on_switch`` is told first, so the room can say so (``model_switch``). Once a
candidate has sent its first token the stream is its own, and a failure ends it as usual.

What a failed candidate sent before failing (its usage, say) is dropped with it: deltas other
than text and tool calls are held back until the first token, or until the candidate ends.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

from rtserver.errors import ProviderError
from rtserver.providers.base import (
    Delta,
    GenerationRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
)
from rtserver.providers.catalog import Model

#: Told of a switch: the failed model, the model taking over, and the error that ended it.
OnSwitch = Callable[[Model, Model, ProviderError], None]
#: The request for one candidate: the same lane for each, its own parameters and caps.
RequestFor = Callable[[Model], GenerationRequest]


def switch_reason(failed: Model, error: ProviderError) -> str:
    """What ``model_switch.reason`` says: which model failed, and how (our own words)."""
    return f"{failed.id} failed before its first token: {error.message}"


def _is_first_token(delta: Delta) -> bool:
    # Thinking is shown as it comes, like the answer: after it, the stream is the model's.
    if isinstance(delta, TextDelta | ReasoningDelta):
        return bool(delta.text)
    return isinstance(delta, ToolCallDelta)


async def routed_deltas(
    candidates: Sequence[Model],
    request_for: RequestFor,
    *,
    on_switch: OnSwitch,
    on_start: Callable[[Model], None] | None = None,
) -> AsyncGenerator[Delta, None]:
    """The deltas of the first candidate that gets as far as its first token.

    ``on_start`` is told of each candidate as its request begins. When every candidate fails
    before its first token, the last one's error is raised.
    """
    if not candidates:
        raise ValueError("a routed stream needs at least one candidate")
    for number, model in enumerate(candidates):
        if on_start is not None:
            on_start(model)
        held: list[Delta] = []
        begun = False
        try:
            async with aclosing(model.provider.stream(request_for(model))) as deltas:
                async for delta in deltas:
                    if not begun and _is_first_token(delta):
                        begun = True
                        for early in held:
                            yield early
                        held.clear()
                    if begun:
                        yield delta
                    else:
                        held.append(delta)
        except ProviderError as exc:
            if begun or number + 1 == len(candidates):
                raise
            on_switch(model, candidates[number + 1], exc)
            continue
        for early in held:
            yield early
        return
