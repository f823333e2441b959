"""A room's queue: what waits for the running streams to end, in arrival order.

Pure and synchronous: the turns layer stores a prompt before it queues it here, and asks this
queue what runs next when a turn ends. Prompts have a stored user message, which everyone sees
waiting; a regenerate re-runs a reply to an existing message and has none of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from rtserver.auth.limits import DailyBudget
from rtserver.errors import PeerError
from rtserver.protocol.frames import Params


@dataclass(frozen=True, slots=True)
class WaitingPrompt:
    """A stored, queued prompt: its user message id, its author, and what it asked for."""

    message: str
    author: str
    models: tuple[str, ...]
    params: Params | None = None
    prompt_id: str = ""
    #: The prompt's text, which a router reads to pick a model.
    text: str = ""
    #: Whose daily budget its replies spend; None after a restart (budgets live in memory).
    budget: DailyBudget | None = None


@dataclass(frozen=True, slots=True)
class WaitingRegenerate:
    """A regenerate of ``model``'s reply to user message ``reply_to``.

    The reply it replaces is looked up when it starts: an earlier regenerate may have run.
    """

    reply_to: str
    model: str
    author: str
    budget: DailyBudget | None = None


Waiting = WaitingPrompt | WaitingRegenerate


class TurnQueue:
    """At most ``capacity`` waiting entries, first in first out.

    A full queue refuses ``busy`` with ``retry_after``: a turn ending frees a place.
    """

    def __init__(self, *, capacity: int, retry_after: float) -> None:
        self._capacity = capacity
        self._retry_after = retry_after
        self._entries: list[Waiting] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Waiting]:
        return iter(list(self._entries))

    def check_room(self) -> None:
        """Raise ``busy`` when one more entry would not fit (before anything is stored)."""
        if len(self._entries) >= self._capacity:
            raise PeerError(
                "busy",
                f"the room's queue is full ({self._capacity} waiting): try again when a turn ends",
                retry_after=self._retry_after,
            )

    def push(self, entry: Waiting) -> None:
        """Add ``entry`` at the end, or raise ``busy`` when the queue is full."""
        self.check_room()
        self._entries.append(entry)

    def restore(self, entries: Iterable[Waiting]) -> None:
        """Put back entries stored before a restart, ahead of anything since, whatever the cap:
        they were accepted once and are not refused now."""
        self._entries[:0] = list(entries)

    def pop(self) -> Waiting | None:
        """The entry that runs next, taken out; None when nothing waits."""
        return self._entries.pop(0) if self._entries else None

    def own(self, message: str, author: str) -> WaitingPrompt:
        """The queued prompt with user message id ``message``, if ``author`` wrote it.

        Raises ``not_found`` when no such prompt waits, ``forbidden`` when another wrote it.
        """
        for entry in self._entries:
            if isinstance(entry, WaitingPrompt) and entry.message == message:
                if entry.author != author:
                    raise PeerError("forbidden", "only its author may withdraw a queued prompt")
                return entry
        raise PeerError("not_found", f"no queued prompt {message[:128]!r}")

    def remove(self, entry: Waiting) -> None:
        """Take ``entry`` out, wherever it stands (a withdrawn prompt)."""
        self._entries = [e for e in self._entries if e is not entry]

    def clear(self) -> list[Waiting]:
        """Take every entry out (a cancel of everything), in queue order."""
        entries, self._entries = self._entries, []
        return entries

    @staticmethod
    def prompt_ids(entries: Iterable[Waiting]) -> list[str]:
        """The user message ids of the prompts among ``entries``, in order."""
        return [e.message for e in entries if isinstance(e, WaitingPrompt)]
