"""Who is in a room, told to its participants as coalesced changes of a bounded list.

Pure: no I/O, no clock, no event loop. The room records each join, leave and typing change here
as it happens, and asks for a :meth:`PresenceBoard.flush` now and then (once per presence
interval); a flush yields one ``presence_diff`` for everyone, holding only what changed since the
last one, or nothing when nothing did.

What is listed is bounded: the ``listed_max`` participants who joined first, of those connected,
plus a count of everyone. So a change costs every participant a few bytes, never the whole list,
however large the room, and a burst of changes between two flushes costs one frame.
"""

from __future__ import annotations

from itertools import islice
from typing import Protocol

from rtserver.protocol.frames import PresenceDiff, PresenceEntry


class Roster(Protocol):
    """Who is in a room, as the room records and tells it: a :class:`PresenceBoard`, or one
    that also hears of the room's participants on other nodes."""

    @property
    def count(self) -> int: ...

    @property
    def pending(self) -> bool: ...

    def listed(self) -> list[PresenceEntry]: ...

    def join(self, entry: PresenceEntry) -> None: ...

    def update(self, entry: PresenceEntry) -> None: ...

    def leave(self, participant_id: str) -> None: ...

    def flush(self) -> PresenceDiff | None: ...


class PresenceBoard:
    """The participants of one room, and what its participants were last told of them."""

    __slots__ = (
        "_announced",
        "_announced_count",
        "_connected",
        "_listed_max",
        "_shown",
        "_touched",
    )

    def __init__(self, *, listed_max: int) -> None:
        self._listed_max = listed_max
        #: Everyone connected, in the order they joined (dicts keep insertion order).
        self._connected: dict[str, PresenceEntry] = {}
        #: The listed entries as of the last flush: what every participant holds.
        self._announced: dict[str, PresenceEntry] = {}
        self._announced_count = 0
        #: Ids that joined, left or changed since the last flush.
        self._touched: set[str] = set()
        #: Ids listed in a welcome since the last flush: its holder must hear if they go.
        self._shown: set[str] = set()

    @property
    def count(self) -> int:
        """How many participants are connected now."""
        return len(self._connected)

    @property
    def pending(self) -> bool:
        """True when something changed since the last flush."""
        return bool(self._touched)

    def listed(self) -> list[PresenceEntry]:
        """The listed participants now, as a joiner's ``welcome`` carries them."""
        listed = list(islice(self._connected.values(), self._listed_max))
        self._shown.update(entry.id for entry in listed)
        return listed

    def join(self, entry: PresenceEntry) -> None:
        """Record a participant who connected (one who rejoins goes to the end)."""
        self._connected.pop(entry.id, None)
        self._connected[entry.id] = entry
        self._touched.add(entry.id)

    def update(self, entry: PresenceEntry) -> None:
        """Record a change of a connected participant's state (its ``typing`` flag)."""
        if entry.id in self._connected:
            self._connected[entry.id] = entry
            self._touched.add(entry.id)

    def leave(self, participant_id: str) -> None:
        """Record a participant who went."""
        if self._connected.pop(participant_id, None) is not None:
            self._touched.add(participant_id)

    def flush(self) -> PresenceDiff | None:
        """What changed since the last flush, as one frame; None when nothing did.

        ``changed`` holds every listed entry that is new to the list, differs from what was
        told, or was touched since (a participant who left and came back with the same id);
        ``left`` the ids no longer listed that were told, or shown in a welcome since. Applying
        it to the last list, or to a list taken from the room at any moment since, gives the
        list now.
        """
        touched, self._touched = self._touched, set()
        shown, self._shown = self._shown, set()
        listed = dict(islice(self._connected.items(), self._listed_max))
        announced = self._announced
        changed = [
            entry
            for entry_id, entry in listed.items()
            if entry_id in touched or announced.get(entry_id) != entry
        ]
        left = [entry_id for entry_id in announced if entry_id not in listed]
        left += [entry_id for entry_id in shown - announced.keys() if entry_id not in listed]
        count = len(self._connected)
        if not changed and not left and count == self._announced_count:
            return None
        self._announced = listed
        self._announced_count = count
        return PresenceDiff(changed=changed, left=left, count=count)
