"""When the garbage collector may stop the event loop: not while connections pour in.

A full collection walks every object the collector tracks, with the event loop stopped: at
5,000 connections about 600,000 objects and 100 to 400 ms on a loaded machine. CPython starts
one whenever what survived the younger collections has grown by a quarter since the last, so
while thousands of connections join, it starts one every second or so, each longer than the
last, and every room waits behind each (docs/performance.md, "Join storm").

A serving process hands that decision to :class:`CollectionGovernor` instead: what the server
holds from its start (modules, classes, settings: a third of the objects at 5,000 connections)
is frozen out of every later collection, CPython's young collections go on (the middle
generation's more often, each a fifth the size), and a full collection runs once the heap has
grown by half since the last and has then stopped growing for a while, or at the latest
``max_defer_s`` after it fell due, so that garbage cycles cannot pile up under a storm that
never ends.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

log = logging.getLogger(__name__)

#: A full collection only when the governor asks: CPython counts young collections up to it.
_NEVER = 2**31 - 1
#: Youngest collections between two of the middle generation (CPython's default is 10). The
#: middle one walks what survived the youngest since it last ran: after ten, during a join
#: storm, 1 to 1.5 ms with the loop stopped, about 60 times a storm of 5,000; after two, the
#: same work in pieces a fifth the size (docs/performance.md, "Join storm").
MIDDLE_EVERY: Final = 2


@dataclass
class CollectionGovernor:
    """Decides, once a tick, whether to run a full collection now.

    ``heap`` measures the heap (allocated blocks: cheap to read, unlike the object list);
    ``collect`` runs a full collection.
    """

    growth: float = 0.5
    #: Seconds the heap must have stopped growing before a due collection runs.
    settle_s: float = 2.0
    #: Seconds a due collection waits at most.
    max_defer_s: float = 30.0
    #: Growth between two ticks below this share counts as the heap standing still.
    still: float = 0.01
    heap: Callable[[], int] = sys.getallocatedblocks
    collect: Callable[[], object] = field(default=lambda: gc.collect(2))
    clock: Callable[[], float] = time.monotonic
    _base: int = field(init=False)
    _last: int = field(init=False)
    _grew_at: float = field(init=False)
    _due_since: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._base = self._last = self.heap()
        self._grew_at = self.clock()

    def tick(self) -> bool:
        """Look at the heap; collect if a collection is due and may run. True if it ran."""
        now, size = self.clock(), self.heap()
        if size > self._last * (1 + self.still):
            self._grew_at = now
        self._last = size
        # What refcounting freed meanwhile lowers the mark growth is measured from.
        self._base = min(self._base, size)
        if size < self._base * (1 + self.growth):
            self._due_since = None
            return False
        if self._due_since is None:
            self._due_since = now
        settled = now - self._grew_at >= self.settle_s
        if not settled and now - self._due_since < self.max_defer_s:
            return False
        started = time.perf_counter()
        self.collect()
        self._base = self._last = self.heap()
        self._due_since = None
        log.debug("full collection in %.0f ms", (time.perf_counter() - started) * 1000)
        return True


async def govern_collections(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx`` for a serving process: freeze what start-up made, govern the rest.

    Process-wide, so only for a process that is the server (``rtserver serve``), never for
    an application embedded in another program or a test run.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, MIDDLE_EVERY, _NEVER)
    governor = CollectionGovernor()
    task = asyncio.create_task(_tick_every(governor, 1.0), name="gc governor")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        gc.set_threshold(young, middle, old)
        gc.unfreeze()


async def _tick_every(governor: CollectionGovernor, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        governor.tick()
