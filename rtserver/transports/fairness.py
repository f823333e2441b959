"""Turns between connections: one client's burst of frames cannot hold the event loop.

aiohttp parses every frame of a read at once and hands them over without a pause, and most
frames are answered without a pause either (a ping, a typing change, a refused prompt). So a
connection whose client writes frames as fast as it can would have every frame of each read
(a 64 KB read holds about 2,000 small ones) handled before any other connection's: tens of
milliseconds in which nobody else is served.
"""

from __future__ import annotations

import asyncio
from typing import Final

#: Frames a connection handles before the others get a turn: a few hundred microseconds.
FRAMES_PER_TURN: Final = 16


class TurnTaker:
    """Counts one connection's frames; after every ``per_turn`` it lets the loop run others."""

    __slots__ = ("_left", "_per_turn")

    def __init__(self, per_turn: int = FRAMES_PER_TURN) -> None:
        self._per_turn = per_turn
        self._left = per_turn

    async def handled(self) -> None:
        """Call after each frame; a pause of one loop turn now and then (not a wait)."""
        self._left -= 1
        if self._left <= 0:
            self._left = self._per_turn
            await asyncio.sleep(0)
