"""Which node runs a room's turn: a lease (SET NX PX) that its holder renews while it runs.

No two nodes run one room's turn: a node starts streams only while it holds the lease, and a
holder that cannot renew it in time (Redis gone, the node stalled) gives its streams up itself
before the lease can pass to another node. A node that dies stops renewing; once the lease has
expired another node may take it, and end the dead node's streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from redis.exceptions import RedisError

from rtserver.bus import scripts
from rtserver.bus.redis import RedisBus

log = logging.getLogger(__name__)

#: Milliseconds a lease lasts without renewal: how long a dead node's streams run on for others.
LEASE_MS: Final = 5_000


class TurnLease:
    """One room's turn lease, as one node sees it."""

    def __init__(
        self,
        bus: RedisBus,
        room_id: str,
        *,
        ttl_ms: int = LEASE_MS,
        on_lost: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._key = bus.keys.room(room_id).lease
        self._ttl_ms = ttl_ms
        self._on_lost = on_lost
        self._clock = clock
        self._renew = bus.client.register_script(scripts.RENEW)
        self._release = bus.client.register_script(scripts.RELEASE)
        self._renewer: asyncio.Task[None] | None = None
        self._renewed_at = 0.0

    @property
    def held(self) -> bool:
        return self._renewer is not None

    async def holder(self) -> str | None:
        """The node holding the lease now, or None."""
        value = await self._bus.client.get(self._key)
        return value.decode() if isinstance(value, bytes) else value

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it (or this node does); True when held."""
        if self.held:
            return True
        taken = await self._bus.client.set(self._key, self._bus.node, nx=True, px=self._ttl_ms)
        if not taken:
            return False
        self._renewed_at = self._clock()
        self._renewer = asyncio.create_task(self._keep(), name=f"lease {self._key}")
        return True

    async def release(self) -> None:
        """Let the lease go (if still held), so another node may take the next turn at once."""
        renewer, self._renewer = self._renewer, None
        if renewer is None:
            return
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)
        try:
            await self._release(keys=[self._key], args=[self._bus.node])
        except RedisError as exc:
            log.warning("bus: could not release %s (%s); it expires by itself", self._key, exc)

    async def _keep(self) -> None:
        period = self._ttl_ms / 3000
        while True:
            await asyncio.sleep(period)
            try:
                kept = await self._renew(keys=[self._key], args=[self._bus.node, self._ttl_ms])
            except RedisError:
                # Without an answer the lease may lapse in Redis: give up before it can.
                kept = 1 if self._clock() - self._renewed_at < period * 2 else 0
            else:
                if kept:
                    self._renewed_at = self._clock()
            if not kept:
                self._renewer = None
                log.error("bus: lost the lease %s; its streams stop here", self._key)
                if self._on_lost is not None:
                    self._on_lost()
                return
