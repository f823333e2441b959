"""rtserver.client and the room's queue: queued prompts in RoomState.queue, withdraw, and a
regenerate whose reply names the one it replaces; the room's seq stays unbroken throughout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rtserver.client import connect
from rtserver.protocol.frames import (
    ErrorFrame,
    MessageEvent,
    RoomEvent,
    StreamEnd,
    StreamStart,
    Unqueued,
)
from tests.conftest import ServerFactory
from tests.integration.scripted_providers import Gate
from tests.integration.test_python_client import Watcher, base, watch


@pytest.fixture
async def watchers() -> AsyncIterator[list[Watcher]]:
    made: list[Watcher] = []
    yield made
    for watcher in made:
        await watcher.stop()


async def test_queue_withdraw_and_regenerate_through_the_python_client(
    start_server: ServerFactory, watchers: list[Watcher]
) -> None:
    gate = Gate()
    server = await start_server(providers={"slow": gate})
    alice = await watch(watchers, connect(base(server), "lobby", name="alice"))
    bob = await watch(watchers, connect(base(server), "lobby", name="bob"))
    await alice.client.prompt("first", models=["slow"])
    await alice.wait(lambda: len(alice.of(StreamStart)) == 1)
    await bob.client.prompt("bob's", models=["slow"])
    await alice.client.prompt("alice's", models=["slow"])
    await alice.wait(lambda: len(alice.state.queue) == 2)
    assert [(t.text, t.author.name if t.author else None) for t in alice.state.queue] == [
        ("bob's", "bob"),
        ("alice's", "alice"),
    ]
    assert all(m.queued for m in alice.of(MessageEvent)[1:])

    bobs = alice.state.queue[0].id
    ref = await alice.client.withdraw(bobs)
    await alice.wait(lambda: any(e.ref == ref for e in alice.of(ErrorFrame)))
    assert next(e for e in alice.of(ErrorFrame) if e.ref == ref).code == "forbidden"
    await bob.client.withdraw(bobs)
    await bob.wait(lambda: len(bob.state.queue) == 1)
    assert [(t.text, t.withdrawn) for t in bob.state.turns] == [("first", False), ("bob's", True)]

    gate.release()
    await alice.wait(lambda: not alice.state.queue and len(alice.of(StreamStart)) == 2)
    assert alice.of(Unqueued)[-1].reason == "started"
    first = alice.state.turns[0]
    old = first.replies[0].id
    await bob.client.regenerate("slow", first.id)
    gate.release(2)
    await alice.wait(alice.ended(3))
    again = alice.of(StreamStart)[2]
    assert (again.reply_to, again.replaces) == (first.id, old)
    assert [r.id for r in first.replies] == [old, again.message]
    assert first.replies[-1].replaces == old
    assert [e.reason for e in alice.of(StreamEnd)] == ["complete"] * 3
    seqs = [e.seq for e in alice.events if isinstance(e, RoomEvent)]
    assert seqs == list(range(1, len(seqs) + 1)), "unqueued events count in the seq"
