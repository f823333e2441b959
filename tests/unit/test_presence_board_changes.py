"""The presence board's bookkeeping between flushes: who counts as changed, who is pending,
and where a participant who joins again stands in the list."""

from __future__ import annotations

from rtserver.protocol.frames import PresenceDiff, PresenceEntry
from rtserver.room.presence import PresenceBoard


def _entry(n: int) -> PresenceEntry:
    return PresenceEntry(id=f"p{n}", name=f"n{n}", typing=False)


def test_a_board_that_nobody_stayed_on_has_nothing_to_tell_at_its_first_flush() -> None:
    board = PresenceBoard(listed_max=10)
    assert board.flush() is None
    board.join(_entry(0))
    board.leave("p0")
    assert board.flush() is None


def test_one_who_joins_again_goes_to_the_end_of_the_list() -> None:
    board = PresenceBoard(listed_max=1)
    board.join(_entry(0))
    board.join(_entry(1))
    assert board.listed() == [_entry(0)]
    board.flush()
    board.join(_entry(0))
    assert board.listed() == [_entry(1)]
    assert board.flush() == PresenceDiff(changed=[_entry(1)], left=["p0"], count=2)


def test_one_who_joins_again_unchanged_is_told_again() -> None:
    board = PresenceBoard(listed_max=10)
    board.join(_entry(0))
    board.flush()
    board.join(_entry(0))
    assert board.pending
    assert board.flush() == PresenceDiff(changed=[_entry(0)], left=[], count=1)


def test_a_leave_is_pending_only_for_someone_who_was_there() -> None:
    board = PresenceBoard(listed_max=1)
    board.join(_entry(0))
    board.join(_entry(1))
    board.flush()
    board.leave("p_never_here")
    assert not board.pending
    # An unlisted one going changes only the count: still a change, to be flushed.
    board.leave("p1")
    assert board.pending
    assert board.flush() == PresenceDiff(changed=[], left=[], count=1)
