"""Ending the streams of a node that died: once its lease has expired, another node takes it.

A reply is ``streaming`` in the store only while some node holds the room's turn lease (the
lease is taken before the turn is stored, and let go after its last reply is finalised). So
when nobody holds the lease, every reply of the room still ``streaming`` was left by a node
that is gone: it is finalised ``interrupted`` with the text of its last checkpoint, and a
``stream_end`` tells every node's participants, exactly as a restart of one node does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rtserver.bus.lease import TurnLease
from rtserver.protocol.frames import HistoryMessage, RoomEvent, StreamEnd
from rtserver.store.base import Store

log = logging.getLogger(__name__)


async def end_orphans(
    room_id: str,
    *,
    lease: TurnLease,
    store: Store,
    publish: Callable[[RoomEvent], None],
    history: int,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> list[HistoryMessage]:
    """End the streams a dead node left in ``room_id``, if nobody holds its lease; which."""
    if lease.held or not await lease.acquire():
        return []
    try:
        left = [m for m in await store.recent(room_id, history) if m.status == "streaming"]
        for message in left:
            await store.finish_reply(
                message.id,
                text=message.text,
                status="interrupted",
                usage=None,
                tool_calls=message.tool_calls or (),
                error=None,
            )
            if message.stream is not None:
                publish(
                    StreamEnd(
                        seq=0,
                        stream=message.stream,
                        reason="interrupted",
                        usage=None,
                        ttft_ms=None,
                        duration_ms=max(0, now_ms() - message.ts),
                        tokens_per_s=None,
                    )
                )
        if left:
            log.warning(
                "room %s: ended %d streams of a node that is gone",
                room_id,
                len(left),
                extra={"room": room_id},
            )
        return left
    finally:
        await lease.release()
