"""Turns between connections: one client's burst of frames cannot hold the event loop.

aiohttp parses every frame of a read at once and hands them over without a pause, and most
frames are answered without a pause either (a ping, a typing change, a refused prompt). So a
connection whose client writes frames as fast as it can would have every frame of each read
(a 64 KB read holds about 2,000 small ones) handled before any other connection's: tens of
milliseconds in which nobody else is served.
"""

from __future__ import annotations

import asyncio
from collections import deque
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


#: Connection set-up steps (an accept, a WebSocket upgrade, a join and its welcome) let
#: through per loop turn. A step and what follows it before its next pause (the request's
#: parsing, the hello) are 0.1 to 0.3 ms of the loop: one a turn keeps every turn of a join
#: storm well under a millisecond, and the storm joins as fast, since the loop turns again at
#: once while set-ups wait (docs/performance.md, "Join storm").
SETUPS_PER_TURN: Final = 1


class SetupGate:
    """Lets at most ``per_turn`` connection set-ups through per event-loop turn.

    A join storm brings a hundred handshakes to the loop at once; run together they hold it
    for several milliseconds, during which the connections already in rooms wait for their
    frames. Set-ups past the turn's share wait, in arrival order, for a later turn: the storm
    joins about as fast, and the loop runs everyone else between each few. The listening
    socket's accepts pass here too (:class:`~rtserver.transports.site.GatedSite`).
    """

    __slots__ = ("_armed", "_per_turn", "_used", "_waiting")

    def __init__(self, per_turn: int = SETUPS_PER_TURN) -> None:
        self._per_turn = per_turn
        self._used = 0
        self._armed = False
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def enter(self) -> None:
        """Return once this set-up may run: now, or on a later loop turn."""
        loop = asyncio.get_running_loop()
        self._arm(loop)
        # No one waits while the turn has a share left: a turn's start hands its shares to
        # those waiting first, so a newcomer never passes one who came before.
        if self._used < self._per_turn:
            self._used += 1
            return
        turn = loop.create_future()
        self._waiting.append(turn)
        await turn

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._armed:
            self._armed = True
            loop.call_soon(self._next_turn, loop)

    def _next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        self._armed = False
        self._used = 0
        while self._waiting and self._used < self._per_turn:
            turn = self._waiting.popleft()
            if not turn.done():  # a set-up whose connection went away while it waited
                turn.set_result(None)
                self._used += 1
        if self._waiting:
            self._arm(loop)
