"""Cuts to a budget of what a model is sent, and the clamp of a prompt's ``max_tokens``.

Pure functions, counted in characters like :mod:`rtserver.room.cuts` (which cuts what a
welcome or a history page carries).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Protocol, TypeVar

from rtserver.room.cuts import first_within


class _Turn(Protocol):
    @property
    def content(self) -> str: ...


U = TypeVar("U", bound=_Turn)


def newest_turns_within(turns: Sequence[U], max_chars: int) -> list[U]:
    """The newest turns whose content fits in ``max_chars``; the newest (the prompt) always."""
    start = first_within([len(t.content) for t in turns], max_chars, keep_newest=True)
    return list(islice(turns, start, None))


def clamp_max_tokens(
    requested: int | None, configured: Mapping[str, object], *, server_cap: int
) -> int | None:
    """A prompt's ``max_tokens`` held to the model's configured ``params.max_tokens``.

    A model that configures none is held to ``server_cap`` (``[limits] max_tokens``), so a
    client's number never decides alone what the operator pays for.
    """
    if requested is None:
        return None
    ceiling = configured.get("max_tokens")
    if isinstance(ceiling, bool) or not isinstance(ceiling, int):
        ceiling = server_cap
    return min(requested, ceiling)
