"""The Store contract, run against SQLite and PostgreSQL alike: idempotent prompts, pages and
lanes, hostile text kept exactly, and a full disk that loses nothing acknowledged."""

from __future__ import annotations

import sqlite3

import msgspec
import pytest

from rtserver.errors import PeerError, StoreError
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    Participant,
    ToolCallRecord,
    ToolErrorInfo,
    Usage,
)
from rtserver.store.base import Store
from tests.integration.test_crash import poll_until
from tests.stores import FullDisk, StoreOpener

#: Text PostgreSQL cannot hold as it is (NUL), the escape's own character, and odd Unicode.
HOSTILE = (
    "a\x00b\x00\x00 \ufdd0 \ufdd00 \ufdd0\ufdd0 end \U0010ffff \u202e\u0645\u0631\u062d\u0628\u0627"
    " e\u0301 \U0001f600 \x01\x7f\u0085 '; DROP TABLE messages;-- $1 \\ %"
)
LONG = "and a long paragraph " * 2_000


def _user(n: int, text: str = "", *, name: str = "ann") -> HistoryMessage:
    return HistoryMessage(
        id=f"u{n}",
        role="user",
        text=text or f"question {n}",
        status="complete",
        ts=1_000 + n,
        author=Participant(id=f"p_{name}", name=name),
    )


def _reply(n: int, model: str, to: HistoryMessage) -> HistoryMessage:
    return HistoryMessage(
        id=f"r{n}-{model}",
        role="assistant",
        text="",
        status="streaming",
        ts=to.ts,
        model=model,
        reply_to=to.id,
        stream=f"s{n}-{model}",
    )


async def _finish(store: Store, reply: HistoryMessage, text: str) -> None:
    await store.finish_reply(
        reply.id, text=text, status="complete", usage=None, tool_calls=(), error=None
    )


async def test_a_prompt_id_is_stored_once_per_room_and_only_there(store: Store) -> None:
    first = _user(1)
    assert await store.start_turn("r", first, "same", [_reply(1, "a", first)])
    again = _user(2)
    assert not await store.start_turn("r", again, "same", [_reply(2, "a", again)])
    other = _user(3)
    assert await store.start_turn("elsewhere", other, "same", [])
    assert [m.id for m in await store.recent("r", 10)] == ["u1", "r1-a"]
    assert (await store.has_prompt("r", "same"), await store.has_prompt("r", "new")) == (
        True,
        False,
    )
    assert await store.has_prompt("elsewhere", "same")


async def test_hostile_text_names_and_prompt_ids_come_back_exactly(
    open_store: StoreOpener,
) -> None:
    store = await open_store()
    user = _user(1, HOSTILE + LONG * 10, name="n\x00\ufdd0")
    reply = _reply(1, "a", user)
    prompt_id = "p\x00\ufdd00"
    assert await store.start_turn("r", user, prompt_id, [reply])
    assert not await store.start_turn("r", _user(2), prompt_id, [])
    await store.checkpoint(reply.id, HOSTILE)
    assert (await store.recent("r", 10))[1].text == HOSTILE
    calls = [ToolCallRecord(call="c\x00", name="t\x00", args='{"x": "\\u0000\x00"}')]
    await store.finish_reply(
        reply.id,
        text=HOSTILE * 2,
        status="error",
        usage=Usage(input_tokens=1, output_tokens=2),
        tool_calls=calls,
        error=ErrorInfo(code="provider_error", message="bad \x00 thing"),
    )
    await store.close()

    reopened = await open_store()
    stored_user, stored_reply = await reopened.recent("r", 10)
    assert stored_user == msgspec.structs.replace(user, prompt_id=prompt_id)
    assert (stored_reply.text, stored_reply.status) == (HOSTILE * 2, "error")
    assert stored_reply.tool_calls == calls
    assert stored_reply.error == ErrorInfo(code="provider_error", message="bad \x00 thing")
    assert await reopened.has_prompt("r", prompt_id)
    assert not await reopened.has_prompt("r", "p\x00")
    assert [m.text for m in await reopened.lane("r", "a", 10)] == [user.text, HOSTILE * 2]


async def test_pages_go_back_in_order_and_an_unknown_before_is_not_found(store: Store) -> None:
    for n in range(5):
        assert await store.start_turn("r", _user(n), f"p{n}", [])
    page, before = await store.page("r", limit=2, before=None)
    assert ([m.id for m in page], before) == (["u3", "u4"], "u3")
    page, before = await store.page("r", limit=2, before="u3")
    assert ([m.id for m in page], before) == (["u1", "u2"], "u1")
    page, before = await store.page("r", limit=2, before="u1")
    assert ([m.id for m in page], before) == (["u0"], None)
    for unknown in ("nope", "u\x00", "x" * 5_000, "'; DROP TABLE messages;--"):
        with pytest.raises(PeerError) as refused:
            await store.page("r", limit=2, before=unknown)
        assert refused.value.code == "not_found"
    with pytest.raises(PeerError):
        await store.page("elsewhere", limit=2, before="u3")


async def test_a_lane_holds_user_messages_and_only_that_models_finished_replies(
    store: Store,
) -> None:
    user = _user(1)
    a, b, empty = _reply(1, "a", user), _reply(1, "b", user), _reply(1, "c", user)
    assert await store.start_turn("r", user, "p1", [a, b, empty])
    await _finish(store, a, "from a")
    await _finish(store, b, "from b")
    await _finish(store, empty, "")
    running_user = _user(2)
    running = _reply(2, "a", running_user)
    assert await store.start_turn("r", running_user, "p2", [running])
    await store.checkpoint(running.id, "still going")
    assert [m.text for m in await store.lane("r", "a", 10)] == [
        "question 1",
        "from a",
        "question 2",
    ]
    assert [m.text for m in await store.lane("r", "c", 10)] == ["question 1", "question 2"]
    assert [m.text for m in await store.lane("r", "a", 1)] == ["question 2"]


async def test_recover_marks_only_streaming_replies_and_a_checkpoint_after_the_end_is_ignored(
    open_store: StoreOpener,
) -> None:
    store = await open_store()
    user = _user(1)
    done, left = _reply(1, "a", user), _reply(1, "b", user)
    assert await store.start_turn("r", user, "p1", [done, left])
    await _finish(store, done, "all of it")
    await store.checkpoint(done.id, "a late checkpoint")
    await store.checkpoint(left.id, "half")
    await store.ping()
    await store.close()
    reopened = await open_store()
    assert await reopened.recover() == 1
    assert await reopened.recover() == 0
    kept = {m.id: (m.status, m.text) for m in await reopened.recent("r", 10)}
    assert kept == {
        "u1": ("complete", "question 1"),
        done.id: ("complete", "all of it"),
        left.id: ("interrupted", "half"),
    }


async def _stream_into_a_full_disk(
    store: Store, full_disk: FullDisk
) -> tuple[HistoryMessage, HistoryMessage]:
    user = _user(1)
    reply = _reply(1, "a", user)
    assert await store.start_turn("r", user, "p1", [reply])
    await store.checkpoint(reply.id, "first words ")
    await full_disk.fill(store)
    with pytest.raises((StoreError, sqlite3.Error)):
        await _finish(store, reply, "first words " + LONG)
    return user, reply


async def test_a_full_disk_refuses_prompts_busy_and_saves_the_final_write_once_there_is_room(
    store: Store, full_disk: FullDisk
) -> None:
    await _stream_into_a_full_disk(store, full_disk)
    stored = (await store.recent("r", 10))[1]
    assert (stored.status, stored.text) == ("streaming", "first words ")
    with pytest.raises(PeerError) as refused:
        await store.start_turn("r", _user(2, "and now? " * 3_000), "p2", [])
    assert refused.value.code == "busy"
    assert refused.value.retry_after is not None
    assert refused.value.retry_after > 0
    await full_disk.free(store)

    async def finalised() -> bool:
        return (await store.recent("r", 10))[1].status == "complete"

    await poll_until(finalised, "the reply was never finalised after the disk had room")
    assert (await store.recent("r", 10))[1].text == "first words " + LONG
    assert await store.start_turn("r", _user(2, "and now? " * 3_000), "p2", [])


async def test_a_store_closed_while_the_disk_is_full_recovers_the_reply_as_interrupted(
    open_store: StoreOpener, full_disk: FullDisk
) -> None:
    store = await open_store()
    _, reply = await _stream_into_a_full_disk(store, full_disk)
    await store.close()
    reopened = await open_store()
    assert await reopened.recover() == 1
    stored = (await reopened.recent("r", 10))[1]
    assert (stored.id, stored.status, stored.text) == (reply.id, "interrupted", "first words ")


async def test_tool_results_and_errors_are_stored_with_the_reply(open_store: StoreOpener) -> None:
    store = await open_store()
    user = _user(1)
    reply = _reply(1, "a", user)
    assert await store.start_turn("r", user, "p", [reply])
    calls = [
        ToolCallRecord(
            call="c1", name="calculator", args='{"expression":"1+1"}', result="2", duration_ms=4
        ),
        ToolCallRecord(
            call="c2",
            name="rm",
            args="{}",
            error=ToolErrorInfo(code="denied", message="Bob denied the call \x00"),
            duration_ms=0,
        ),
        ToolCallRecord(call="c3", name="huge", result=HOSTILE + LONG, duration_ms=9),
    ]
    await store.finish_reply(
        reply.id, text="done", status="complete", usage=None, tool_calls=calls, error=None
    )
    await store.close()
    reopened = await open_store()
    assert (await reopened.recent("r", 10))[1].tool_calls == calls


async def test_calls_stored_before_tools_ran_read_back_without_results(store: Store) -> None:
    # Rows written before tool results existed hold only call, name and args.
    user = _user(1)
    reply = _reply(1, "a", user)
    assert await store.start_turn("r", user, "p", [reply])
    old = [ToolCallRecord(call="c1", name="get_time", args="{}")]
    await store.finish_reply(
        reply.id, text="", status="complete", usage=None, tool_calls=old, error=None
    )
    (call,) = (await store.recent("r", 10))[1].tool_calls or []
    assert (call.result, call.error, call.duration_ms) == (None, None, None)
