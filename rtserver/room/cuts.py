"""Cuts of a room's messages to a budget of characters: what a welcome or a history page carries.

Pure functions. Budgets are counted in characters (code points) of message text (the answer
and its reasoning, which weighs the same), like
``max_prompt_chars``: encoded as UTF-8 a character takes one to four bytes, so a budget of N
characters bounds the bytes at 4N plus each message's few fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from typing import Protocol, TypeVar


class _Texted(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def reasoning(self) -> str | None: ...


T = TypeVar("T", bound=_Texted)


def newest_within(messages: Sequence[T], max_chars: int, *, keep_newest: bool) -> list[T]:
    """The newest messages whose text fits in ``max_chars``, oldest first.

    Older messages go first. With ``keep_newest`` the newest message is kept even when it
    alone is over the budget (a page must not be empty while there is more to read).
    """
    start = first_within([chars_of(m) for m in messages], max_chars, keep_newest=keep_newest)
    return list(islice(messages, start, None))


def chars_of(message: _Texted) -> int:
    """The characters a message holds: its answer and its reasoning."""
    reasoning = message.reasoning
    return len(message.text) + (len(reasoning) if reasoning else 0)


def first_within(sizes: Sequence[int], max_chars: int, *, keep_newest: bool) -> int:
    """The index of the oldest item kept when the newest ones fill ``max_chars``."""
    used = 0
    start = len(sizes)
    for index in range(len(sizes) - 1, -1, -1):
        used += sizes[index]
        if used > max_chars and not (keep_newest and index == len(sizes) - 1):
            break
        start = index
    return start
