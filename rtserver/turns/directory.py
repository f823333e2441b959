"""The open rooms of a server: opened on first use, closed when idle for a while."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Callable

from rtserver.config import ROOM_ID_PATTERN, Limits
from rtserver.errors import PeerError
from rtserver.ops.metrics import Metrics
from rtserver.providers.catalog import Catalog
from rtserver.room.member import Member
from rtserver.room.memory import MemoryBudget
from rtserver.store.base import Store
from rtserver.tools.toolbox import Toolbox
from rtserver.turns.slots import Slots
from rtserver.turns.turns import Turns

log = logging.getLogger(__name__)
_ROOM_ID = re.compile(ROOM_ID_PATTERN)
#: Seconds a client is told to wait when ``rooms_max`` rooms are all in use.
ROOMS_RETRY_S = 30.0


def check_room_id(room_id: str) -> str:
    """Return ``room_id`` if it is a valid room id, else raise ``bad_frame``."""
    if not _ROOM_ID.fullmatch(room_id):
        raise PeerError("bad_frame", "room ids are 1 to 64 characters of A-Z, a-z, 0-9, _ and -")
    return room_id


class RoomDirectory:
    """Rooms by id. An idle room stays open ``idle_room_seconds`` so resume keeps working."""

    def __init__(
        self,
        *,
        store: Store,
        catalog: Catalog,
        limits: Limits,
        streams: Slots | None = None,
        memory: MemoryBudget | None = None,
        metrics: Metrics | None = None,
        toolbox: Toolbox | None = None,
        make: Callable[[str], Turns] | None = None,
    ) -> None:
        """``make`` builds a room's turns (several nodes: shared ones); by default, Turns."""
        self._make = make
        self._metrics = metrics or Metrics()
        self._toolbox = toolbox
        self._metrics.watch_rooms(lambda: len(self._rooms))
        self._store = store
        self._catalog = catalog
        self._limits = limits
        self._streams = streams
        self._memory = memory
        if memory is not None:
            # Under memory pressure, rooms nobody is in go first, whole.
            memory.free_first = self._let_go_longest_idle
        self._rooms: dict[str, Turns] = {}
        self._opening: dict[str, asyncio.Task[Turns]] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._closing = False

    @property
    def rooms(self) -> dict[str, Turns]:
        return self._rooms

    async def get(self, room_id: str) -> Turns:
        """The open room ``room_id`` (its turns), loading it from the store the first time."""
        if self._closing:
            raise PeerError("busy", "the server is shutting down")
        room = self._rooms.get(room_id)
        if room is None:
            task = self._opening.get(room_id)
            if task is None:
                self._make_room_for_one()
                task = self._opening[room_id] = asyncio.create_task(self._open(room_id))
                task.add_done_callback(lambda _: self._opening.pop(room_id, None))
            room = await asyncio.shield(task)
        self._keep(room)
        return room

    def member_by_session(self, room_id: str, session: str) -> tuple[Turns, Member] | None:
        """The open room ``room_id`` and its participant holding ``session``, if both exist.

        For transports whose client frames arrive apart from the connection (SSE + POST).
        A session is a bearer secret, so it is compared in constant time.
        """
        room = self._rooms.get(room_id)
        if room is None:
            return None
        wanted = session.encode()
        for member in room.members:
            if hmac.compare_digest(member.session.encode(), wanted):
                return room, member
        return None

    def _make_room_for_one(self) -> None:
        """Let idle rooms go, longest idle first, so one more fits ``rooms_max``; else ``busy``."""
        rooms_max = self._limits.rooms_max
        while len(self._rooms) + len(self._opening) >= rooms_max:
            if not self._let_go_longest_idle():
                break
        if len(self._rooms) + len(self._opening) >= rooms_max:
            raise PeerError(
                "busy",
                f"the server has its limit of {rooms_max} rooms open: try again later",
                retry_after=ROOMS_RETRY_S,
            )

    async def _open(self, room_id: str) -> Turns:
        room = (
            self._make(room_id)
            if self._make is not None
            else Turns(
                room_id,
                store=self._store,
                catalog=self._catalog,
                limits=self._limits,
                streams=self._streams,
                memory=self._memory,
                metrics=self._metrics,
                toolbox=self._toolbox,
            )
        )
        await room.load()
        room.room.on_idle = lambda: self._idle(room)
        self._rooms[room_id] = room
        return room

    def _keep(self, room: Turns) -> None:
        handle = self._expiry.pop(room.id, None)
        if handle is not None:
            handle.cancel()

    def _idle(self, room: Turns) -> None:
        if self._closing or room.id in self._expiry:
            return
        loop = asyncio.get_running_loop()
        self._expiry[room.id] = loop.call_later(self._limits.idle_room_seconds, self._expire, room)

    def _expire(self, room: Turns) -> None:
        self._expiry.pop(room.id, None)
        if room.idle and self._rooms.get(room.id) is room:
            self._let_go(room.id)

    def _let_go(self, room_id: str) -> None:
        room = self._rooms.pop(room_id, None)
        if room is None:
            return
        room.let_go()
        if self._memory is not None:
            for held in room.budgeted():
                self._memory.forget(held)

    def _let_go_longest_idle(self) -> bool:
        """Let go of the room idle longest, to free memory; False when no room is idle."""
        while self._expiry:
            oldest = next(iter(self._expiry))
            self._expiry.pop(oldest).cancel()
            room = self._rooms.get(oldest)
            if room is not None and room.idle:
                self._let_go(oldest)
                return True
        return False

    async def close(self) -> None:
        """Interrupt every running stream, persist it, and close every connection (1001)."""
        self._closing = True
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()
        await asyncio.gather(*(room.close() for room in self._rooms.values()))
