"""The outbox's switch between writing through to a socket and queueing under backpressure.

A fake sink stands for the socket: it can be paused and resumed, records every write, and
drains the outbox in batches when told to, as the WebSocket sink's drainer does.
"""

from __future__ import annotations

import pytest

from rtserver.room.outbox import Outbox, OutboxClosed
from rtserver.transports.ws_sink import frame_header


class FakeSink:
    """A socket that takes bytes unless paused, and counts its writes and wake-ups."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.paused = False
        self.writes: list[bytes] = []
        self.wakes = 0

    def ready(self) -> bool:
        return not self.paused

    def write(self, data: bytes) -> None:
        assert not self.paused, "a paused socket was written to directly"
        self.writes.append(data)

    def wake(self) -> None:
        self.wakes += 1

    def drain(self) -> int:
        """What the drainer does once the socket drains: write the whole backlog in one batch."""
        batch = self.outbox.take_ready()
        if batch:
            self.writes.append(b"".join(batch))
        return len(batch)

    def delivered(self) -> bytes:
        return b"".join(self.writes)


def attached(max_bytes: int = 100) -> tuple[Outbox, FakeSink]:
    box = Outbox(max_bytes=max_bytes)
    sink = FakeSink(box)
    box.attach(sink)
    return box, sink


def test_an_empty_outbox_writes_through_once_per_frame_and_wakes_nobody() -> None:
    box, sink = attached()
    for frame in (b"a", b"b", b"c"):
        assert box.put(frame)
    assert sink.writes == [b"a", b"b", b"c"]
    assert sink.wakes == 0
    assert box.queued_bytes == 0
    assert not box.backlog


def test_a_paused_socket_queues_and_wakes_the_drainer() -> None:
    box, sink = attached()
    sink.paused = True
    assert box.put(b"1")
    assert box.put(b"2")
    assert sink.writes == []
    assert box.queued_bytes == 2
    assert sink.wakes == 2


def test_order_holds_across_the_switch_from_queued_back_to_direct() -> None:
    box, sink = attached()
    box.put(b"1")
    sink.paused = True
    box.put(b"2")
    box.put(b"3")
    # The socket is writable again but the drainer has not run: a new frame must not pass
    # the queued ones, so it queues behind them.
    sink.paused = False
    box.put(b"4")
    assert sink.writes == [b"1"]
    assert sink.drain() == 3
    box.put(b"5")
    assert sink.writes == [b"1", b"234", b"5"]
    assert sink.delivered() == b"12345"


def test_the_bound_counts_only_what_is_queued() -> None:
    box, sink = attached(max_bytes=10)
    # Written through: nothing counts toward the bound.
    assert all(box.put(b"x" * 10) for _ in range(5))
    sink.paused = True
    assert box.put(b"y" * 6)
    assert not box.put(b"z" * 5), "past the bound is refused"
    assert box.put(b"beat", force=True)
    assert box.queued_bytes == 10
    sink.paused = False
    sink.drain()
    assert box.queued_bytes == 0
    assert box.put(b"w" * 10)


def test_preloaded_frames_go_first_and_outside_the_bound() -> None:
    box = Outbox(max_bytes=4)
    box.preload(b"welcome-larger-than-the-bound")
    box.preload(b"replayed")
    sink = FakeSink(box)
    box.attach(sink)
    assert sink.wakes == 1, "attaching with a backlog wakes the drainer"
    # Live frames queue behind the catch-up even though the socket is writable.
    assert box.put(b"live")
    assert sink.writes == []
    sink.drain()
    box.put(b"next")
    assert sink.writes == [b"welcome-larger-than-the-boundreplayedlive", b"next"]


def test_preload_after_attach_is_refused() -> None:
    box, _ = attached()
    with pytest.raises(RuntimeError):
        box.preload(b"late welcome")


def test_close_drops_the_queue_and_refuses_more() -> None:
    box, sink = attached()
    sink.paused = True
    box.put(b"queued")
    box.close(4000, "slow consumer")
    assert sink.wakes == 2, "the close wakes the drainer to send the close frame"
    assert not box.backlog
    assert box.close_reason is not None
    assert box.close_reason.code == 4000
    sink.paused = False
    assert not box.put(b"after")
    assert sink.drain() == 0
    assert sink.writes == []


def test_close_with_flush_keeps_the_queue_for_the_drainer() -> None:
    box, sink = attached()
    sink.paused = True
    box.put(b"a")
    box.put(b"b")
    box.close(1001, "server shutting down", flush=True)
    assert not box.put(b"c")
    sink.paused = False
    sink.drain()
    assert sink.writes == [b"ab"]


def test_attaching_to_a_closed_outbox_wakes_the_sink_to_close() -> None:
    box = Outbox(max_bytes=10)
    box.close(4000, "slow")
    sink = FakeSink(box)
    box.attach(sink)
    assert sink.wakes == 1


async def test_without_a_sink_the_outbox_is_a_queue_read_in_batches() -> None:
    box = Outbox(max_bytes=100)
    box.put(b"a")
    box.put(b"b")
    await box.wait()
    assert box.take_ready() == [b"a", b"b"]
    box.close(1000, "", flush=True)
    with pytest.raises(OutboxClosed):
        await box.wait()


async def test_wait_closed_returns_at_once_for_a_closed_outbox() -> None:
    box = Outbox(max_bytes=10)
    box.close(1000, "")
    await box.wait_closed()
    assert box.closed


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (2**32 + 5, b"\x81\x7f\x00\x00\x00\x01\x00\x00\x00\x05"),
    ],
)
def test_a_frame_header_has_the_length_form_rfc_6455_gives_its_size(
    length: int, expected: bytes
) -> None:
    # A final text frame, unmasked: 7 bits of length up to 125, then 16, then 64.
    assert frame_header(0x1, length) == expected


def test_a_binary_frame_header_names_its_opcode() -> None:
    assert frame_header(0x2, 3) == b"\x82\x03"
