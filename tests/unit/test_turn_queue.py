"""The room's queue on its own: first in first out, bounded, withdrawn only by the author."""

from __future__ import annotations

import pytest

from rtserver.errors import PeerError
from rtserver.protocol.frames import Params
from rtserver.turns.queue import TurnQueue, Waiting, WaitingPrompt, WaitingRegenerate


def _prompt(message: str, author: str = "ann") -> WaitingPrompt:
    return WaitingPrompt(message=message, author=author, models=("a",))


def _queue(capacity: int = 3) -> TurnQueue:
    return TurnQueue(capacity=capacity, retry_after=5.0)


def test_entries_run_in_arrival_order() -> None:
    queue = _queue()
    again = WaitingRegenerate(reply_to="m-0", model="a", author="bob")
    for entry in (_prompt("m-1"), again, _prompt("m-2", "bob")):
        queue.push(entry)
    assert len(queue) == 3
    assert [queue.pop(), queue.pop(), queue.pop(), queue.pop()] == [
        _prompt("m-1"),
        again,
        _prompt("m-2", "bob"),
        None,
    ]


def test_a_full_queue_refuses_busy_with_retry_after_and_keeps_what_it_has() -> None:
    queue = _queue(capacity=2)
    queue.push(_prompt("m-1"))
    queue.check_room()
    queue.push(_prompt("m-2"))
    for attempt in (queue.check_room, lambda: queue.push(_prompt("m-3"))):
        with pytest.raises(PeerError) as refused:
            attempt()
        assert (refused.value.code, refused.value.retry_after) == ("busy", 5.0)
    assert TurnQueue.prompt_ids(queue) == ["m-1", "m-2"]


def test_restored_entries_go_first_whatever_the_cap() -> None:
    queue = _queue(capacity=1)
    queue.push(_prompt("new"))
    queue.restore([_prompt("old-1"), _prompt("old-2")])
    assert TurnQueue.prompt_ids(queue) == ["old-1", "old-2", "new"]


def test_only_the_author_withdraws_a_queued_prompt_and_only_once() -> None:
    queue = _queue()
    queue.push(_prompt("m-1"))
    queue.push(WaitingRegenerate(reply_to="m-1", model="a", author="ann"))
    queue.push(_prompt("m-2", "bob"))
    with pytest.raises(PeerError) as forbidden:
        queue.own("m-2", "ann")
    assert forbidden.value.code == "forbidden"
    own = queue.own("m-2", "bob")
    assert own == _prompt("m-2", "bob")
    queue.remove(own)
    for message in ("m-2", "m-1x", "x" * 10_000):
        with pytest.raises(PeerError) as missing:
            queue.own(message, "bob")
        assert missing.value.code == "not_found"
        assert len(missing.value.message) < 200
    assert TurnQueue.prompt_ids(queue) == ["m-1"]


def test_clear_takes_everything_out_in_order() -> None:
    queue = _queue()
    entries: list[Waiting] = [
        WaitingPrompt(message="m-1", author="ann", models=("a", "b"), params=Params(max_tokens=5)),
        WaitingRegenerate(reply_to="m-0", model="a", author="ann"),
        _prompt("m-2"),
    ]
    for entry in entries:
        queue.push(entry)
    cleared = queue.clear()
    assert cleared == entries
    assert TurnQueue.prompt_ids(cleared) == ["m-1", "m-2"]
    assert (len(queue), queue.pop(), list(queue)) == (0, None, [])
