"""The SSE keep-alive's cadence, on an event loop whose clock jumps to its next timer."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any

from rtserver.protocol.closecodes import CloseCode
from rtserver.room.outbox import Outbox
from rtserver.transports.sse import HEARTBEAT, PEER_CHECK_S, _keep_alive


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, with nothing ready, moves the clock to the next timer instead of waiting."""

    now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout:
            self.now += timeout
        return ready


class _VirtualLoop(asyncio.SelectorEventLoop):
    """Loop time is virtual: a test of cadence runs at once and counts exactly, under any load."""

    def __init__(self) -> None:
        self.clock = _JumpingSelector()
        super().__init__(self.clock)

    def time(self) -> float:
        return self.clock.now


def _run(scenario: Coroutine[Any, Any, None]) -> None:
    loop = _VirtualLoop()
    try:
        loop.run_until_complete(scenario)
    finally:
        loop.close()


class _Transport:
    aborted = False

    def abort(self) -> None:
        self.aborted = True


class _Request:
    """What the keep-alive reads of a request: its transport, None once the peer has gone."""

    def __init__(self) -> None:
        self.transport: _Transport | None = _Transport()


def test_a_heartbeat_shorter_than_the_peer_check_beats_at_its_own_pace() -> None:
    heartbeat = 0.25
    assert heartbeat < PEER_CHECK_S
    outbox = Outbox(max_bytes=1 << 16)
    request = _Request()

    async def scenario() -> None:
        keeper = asyncio.create_task(_keep_alive(request, outbox, heartbeat))  # type: ignore[arg-type]
        # Loop time, not wall time: 2.1 s hold the beats due at 0.25, 0.5, ... 2.0.
        await asyncio.sleep(2.1)
        assert not keeper.done()
        assert outbox.take_ready() == [HEARTBEAT] * 8
        keeper.cancel()

    _run(scenario())


def test_a_peer_gone_closes_the_outbox_as_connection_lost() -> None:
    outbox = Outbox(max_bytes=1 << 16)
    request = _Request()

    async def scenario() -> None:
        keeper = asyncio.create_task(_keep_alive(request, outbox, 5.0))  # type: ignore[arg-type]
        await asyncio.sleep(0.5)
        request.transport = None
        await asyncio.wait_for(keeper, timeout=60)
        reason = outbox.close_reason
        assert reason is not None
        assert (reason.code, reason.reason) == (CloseCode.CONNECTION_LOST, "connection lost")
        assert outbox.take_ready() == [], "no beat was due yet"

    _run(scenario())


def test_a_closed_outbox_whose_connection_stays_is_cut_a_heartbeat_later() -> None:
    outbox = Outbox(max_bytes=1 << 16)
    request = _Request()
    transport = request.transport
    assert transport is not None

    async def scenario() -> None:
        keeper = asyncio.create_task(_keep_alive(request, outbox, 5.0))  # type: ignore[arg-type]
        await asyncio.sleep(0.5)
        outbox.close(CloseCode.NORMAL, "")
        await asyncio.sleep(5.0)
        assert not transport.aborted, "a heartbeat to finish writing"
        await asyncio.wait_for(keeper, timeout=60)
        assert transport.aborted

    _run(scenario())


def test_a_heartbeat_is_queued_past_the_bound_of_a_full_outbox() -> None:
    """A reader that lags near the bound still gets its beats: a beat must not be what cuts it."""
    frame = b"data: x\n\n"
    outbox = Outbox(max_bytes=len(frame))
    assert outbox.put(frame)
    assert not outbox.put(frame), "the outbox is full"
    request = _Request()

    async def scenario() -> None:
        keeper = asyncio.create_task(_keep_alive(request, outbox, 1.0))  # type: ignore[arg-type]
        try:
            await asyncio.sleep(1.5)
            assert outbox.take_ready() == [frame, HEARTBEAT]
            assert not outbox.closed
        finally:
            keeper.cancel()

    _run(scenario())
