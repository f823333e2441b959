"""Two connections' bursts of frames take turns on the event loop, and so do set-ups."""

from __future__ import annotations

import asyncio
from itertools import groupby

from rtserver.transports.fairness import SETUPS_PER_TURN, SetupGate, TurnTaker


async def burst(name: str, frames: int, order: list[str], turns: TurnTaker) -> None:
    """Handle ``frames`` frames with no pause of their own, as a refused prompt or a ping is."""
    for _ in range(frames):
        order.append(name)
        await turns.handled()


async def test_bursts_take_turns_of_per_turn_frames() -> None:
    order: list[str] = []
    await asyncio.gather(
        burst("a", 40, order, TurnTaker(per_turn=16)), burst("b", 40, order, TurnTaker(16))
    )
    assert [(name, len(list(run))) for name, run in groupby(order)] == [
        ("a", 16),
        ("b", 16),
        ("a", 16),
        ("b", 16),
        ("a", 8),
        ("b", 8),
    ]


async def test_a_frame_between_bursts_goes_after_one_turn_at_most() -> None:
    order: list[str] = []
    flood = asyncio.create_task(burst("flood", 1000, order, TurnTaker()))
    await asyncio.sleep(0)  # the flood's task starts on this loop turn
    await burst("calm", 1, order, TurnTaker())
    await flood
    assert order.index("calm") <= 16


async def test_a_single_frame_never_pauses() -> None:
    turns = TurnTaker(per_turn=3)
    loop = asyncio.get_running_loop()
    ran: list[bool] = []
    loop.call_soon(lambda: ran.append(True))
    await turns.handled()
    await turns.handled()
    assert ran == [], "no pause yet: the callback queued meanwhile has not run"
    await turns.handled()
    assert ran == [True]


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


async def set_up(
    name: str, gate: SetupGate, turns: LoopTurns, passed: list[tuple[str, int]]
) -> None:
    await gate.enter()
    passed.append((name, turns.now))


async def test_set_ups_pass_a_few_per_loop_turn_in_arrival_order() -> None:
    turns = LoopTurns()
    gate = SetupGate(per_turn=3)
    passed: list[tuple[str, int]] = []
    try:
        await asyncio.gather(*(set_up(f"c{n}", gate, turns, passed) for n in range(10)))
    finally:
        turns.stop()
    assert [name for name, _ in passed] == [f"c{n}" for n in range(10)]
    per_turn = [len(list(group)) for _, group in groupby(passed, key=lambda p: p[1])]
    assert per_turn == [3, 3, 3, 1]


async def test_a_lone_set_up_passes_without_waiting_a_turn() -> None:
    turns = LoopTurns()
    gate = SetupGate(per_turn=1)
    try:
        at = turns.now
        await gate.enter()
        assert turns.now == at
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        # A turn later, the turn's share is whole again: the next one passes at once too.
        at = turns.now
        await gate.enter()
        assert turns.now == at
    finally:
        turns.stop()


async def _turns_to_pass(*, cancel_the_first_waiter: bool) -> int:
    """The turn on which the first waiter still wanting in passes (a share of one a turn)."""
    turns = LoopTurns()
    gate = SetupGate(per_turn=1)
    passed: list[tuple[str, int]] = []
    names = ("takes this turn", "first", "second")
    tasks = [asyncio.create_task(set_up(name, gate, turns, passed)) for name in names]
    try:
        await asyncio.sleep(0)  # on the turn they all arrive: one passed, two wait
        assert [name for name, _ in passed] == ["takes this turn"]
        if cancel_the_first_waiter:
            tasks[1].cancel()
        async with asyncio.timeout(10):
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        turns.stop()
    return dict(passed)["second" if cancel_the_first_waiter else "first"] - dict(passed)[names[0]]


async def test_a_set_up_whose_connection_went_away_takes_no_share() -> None:
    # The second waiter passes on the turn the first would have had: the cancelled one was
    # skipped, not given the turn's share.
    assert await _turns_to_pass(cancel_the_first_waiter=True) == await _turns_to_pass(
        cancel_the_first_waiter=False
    )


def test_a_turn_lets_one_set_up_through_by_default() -> None:
    assert SETUPS_PER_TURN == 1
