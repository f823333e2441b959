"""Presence across nodes: each node's joins and leaves, merged into one list and one count."""

from __future__ import annotations

from rtserver.bus.presence import ClusterPresence
from rtserver.protocol.frames import PresenceEntry
from rtserver.room.presence import PresenceBoard
from tests.integration.cluster.conftest import BusOpener
from tests.support import eventually


def entry(pid: str, *, typing: bool = False) -> PresenceEntry:
    return PresenceEntry(id=pid, name=pid.upper(), typing=typing)


async def node_presence(open_bus: BusOpener, room: str = "r") -> ClusterPresence:
    presence = ClusterPresence(await open_bus(), room, PresenceBoard(listed_max=10))
    await presence.start()
    return presence


async def test_counts_merge_across_nodes(open_bus: BusOpener) -> None:
    a, b = await node_presence(open_bus), await node_presence(open_bus)
    a.join(entry("ada"))
    b.join(entry("bob"))
    b.join(entry("cy"))
    await eventually(lambda: a.count == 3 and b.count == 3)
    # One person on two nodes counts once, and stays until the last node lets them go.
    a.join(entry("bob"))
    b.leave("bob")
    await eventually(lambda: b.count == 2)
    assert a.count == 3
    a.leave("bob")
    await eventually(lambda: a.count == 2 and b.count == 2)
    assert {e.id for e in a.listed()} == {e.id for e in b.listed()} == {"ada", "cy"}


async def test_a_late_node_loads_who_is_there_and_typing_travels(open_bus: BusOpener) -> None:
    a = await node_presence(open_bus)
    a.join(entry("ada"))
    a.join(entry("bob"))
    await eventually(lambda: a.count == 2)
    late = await node_presence(open_bus)
    await eventually(lambda: late.count == 2)
    a.update(entry("ada", typing=True))
    await eventually(lambda: any(e.typing for e in late.listed()))
    diff = late.flush()
    assert diff is not None
    assert diff.count == 2


async def test_a_dead_nodes_participants_are_swept(open_bus: BusOpener) -> None:
    dead_bus = await open_bus()
    dead = ClusterPresence(dead_bus, "r", PresenceBoard(listed_max=10))
    await dead.start()
    survivor = await node_presence(open_bus)
    dead.join(entry("ghost"))
    await eventually(lambda: survivor.count == 1)
    # The node stops beating (its liveness key gone), its entries left behind.
    await dead_bus.client.delete(dead_bus.keys.alive(dead_bus.node))
    assert await survivor.sweep() == 1
    assert survivor.count == 0


async def test_hostile_presence_changes_are_dropped(open_bus: BusOpener) -> None:
    a = await node_presence(open_bus)
    keys = a._bus.keys.room("r")
    await a._bus.client.xadd(keys.presence_changes, {"n": "n-x", "o": "j", "p": "x", "e": b"\xc1"})
    await a._bus.client.xadd(keys.presence_changes, {"n": "n-x", "o": "?", "p": "y"})
    await a._bus.client.xadd(keys.presence_changes, {"garbage": "1"})
    b = await node_presence(open_bus)
    b.join(entry("bob"))
    await eventually(lambda: a.count == 1)
    assert [e.id for e in a.listed()] == ["bob"]


async def test_a_join_storm_reaches_the_other_node(open_bus: BusOpener) -> None:
    a, b = await node_presence(open_bus), await node_presence(open_bus)
    for n in range(1500):
        a.join(entry(f"p{n}"))
    await eventually(lambda: b.count == 1500, timeout=30)
    for n in range(0, 1500, 2):
        a.leave(f"p{n}")
    await eventually(lambda: b.count == 750, timeout=30)
