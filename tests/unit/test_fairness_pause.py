"""A turn's pause lets the loop run once: a pause, not a wait."""

from __future__ import annotations

import asyncio

from rtserver.transports.fairness import TurnTaker


class LoopTurns:
    """Counts event-loop turns: a callback that queues itself again, one tick a turn."""

    def __init__(self) -> None:
        self.now = 0
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.now += 1
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


async def test_the_pause_after_a_turn_of_frames_lasts_one_loop_turn() -> None:
    turns = TurnTaker(per_turn=2)
    ticks = LoopTurns()
    try:
        await turns.handled()
        before = ticks.now
        await turns.handled()  # the turn's last frame: the pause
        # The loop ran the ticker once, as it runs every other connection's ready callback
        # once; a pause that slept would have let it spin thousands of times.
        assert ticks.now - before == 1
    finally:
        ticks.stop()
