"""A node that dies mid-stream: once its lease expires, another ends its streams interrupted."""

from __future__ import annotations

from rtserver.bus.lease import TurnLease
from rtserver.bus.orphans import end_orphans
from rtserver.protocol.frames import HistoryMessage, Participant, RoomEvent, StreamEnd
from rtserver.store.base import Store
from tests.integration.cluster.conftest import BusOpener


def turn() -> tuple[HistoryMessage, HistoryMessage]:
    user = HistoryMessage(
        id="m_u", role="user", text="hi", status="complete", ts=1,
        author=Participant(id="p", name="ada"), prompt_id="q1",
    )  # fmt: skip
    reply = HistoryMessage(
        id="m_r", role="assistant", text="", status="streaming", ts=1,
        model="demo", reply_to="m_u", stream="s_1",
    )  # fmt: skip
    return user, reply


async def test_a_dead_nodes_stream_ends_with_its_checkpoint(
    open_bus: BusOpener, store: Store
) -> None:
    dead, survivor = await open_bus(), await open_bus()
    user, reply = turn()
    await dead.client.set(dead.keys.room("r").lease, dead.node, px=200)
    await store.start_turn("r", user, "q1", [reply])
    await store.checkpoint("m_r", "half a sent")
    published: list[RoomEvent] = []
    lease = TurnLease(survivor, "r", ttl_ms=1000)

    async def end() -> list[HistoryMessage]:
        return await end_orphans(
            "r", lease=lease, store=store, publish=published.append, history=50
        )

    # While the dead node's lease lasts nothing is touched: it might still be running.
    assert (
        await end_orphans("r", lease=lease, store=store, publish=published.append, history=50) == []
    )
    await dead.client.delete(dead.keys.room("r").lease)  # expired
    ended = await end()
    assert [m.id for m in ended] == ["m_r"]
    [event] = published
    assert isinstance(event, StreamEnd)
    assert (event.stream, event.reason) == ("s_1", "interrupted")
    stored = {m.id: m for m in await store.recent("r", 10)}
    assert (stored["m_r"].status, stored["m_r"].text) == ("interrupted", "half a sent")
    assert not lease.held
    assert await lease.holder() is None
    # Twice is nothing more.
    assert (
        await end_orphans("r", lease=lease, store=store, publish=published.append, history=50) == []
    )
