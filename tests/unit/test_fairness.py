"""Two connections' bursts of frames take turns on the event loop."""

from __future__ import annotations

import asyncio
from itertools import groupby

from rtserver.transports.fairness import TurnTaker


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
