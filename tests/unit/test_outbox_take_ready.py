"""An outbox emptied by take_ready counts what is queued after it toward its bound, as new."""

from __future__ import annotations

from rtserver.room.outbox import Outbox


async def test_after_take_ready_a_frame_read_with_get_frees_its_bytes() -> None:
    box = Outbox(max_bytes=10)
    box.preload(b"welcome, larger than the bound")
    assert box.put(b"12345")
    assert box.take_ready() == [b"welcome, larger than the bound", b"12345"]
    assert box.queued_bytes == 0
    # Nothing preloaded is left: the next frames count, and reading one gives its bytes back.
    assert box.put(b"abcdefgh")
    assert box.queued_bytes == 8
    assert await box.get() == b"abcdefgh"
    assert box.queued_bytes == 0
    assert box.put(b"0123456789"), "the whole bound is free again"
    assert not box.put(b"x")
