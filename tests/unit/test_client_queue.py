"""The Python client's RoomState folds the room's queue: queued messages wait apart from the
turns, ``unqueued`` moves them in (started) or marks them withdrawn, replies name what they
replace."""

from __future__ import annotations

from rtserver.client.state import RoomState
from rtserver.protocol.frames import (
    HistoryMessage,
    MessageEvent,
    Participant,
    StreamStart,
    Unqueued,
    Welcome,
)

BOB = Participant(id="u-2", name="Bob")


def _welcome(messages: list[HistoryMessage]) -> Welcome:
    return Welcome(
        session="s",
        participant=BOB,
        room="r",
        epoch="e",
        seq=0,
        resumed=False,
        models=[],
        participants=[],
        messages=messages,
        streams=[],
    )


def _queued(seq: int, message_id: str) -> MessageEvent:
    return MessageEvent(
        seq=seq,
        id=message_id,
        author=BOB,
        text="?",
        prompt_id=f"p-{message_id}",
        ts=seq,
        queued=True,
    )


def test_queued_prompts_wait_and_join_the_turns_in_the_order_they_leave() -> None:
    state = RoomState(clock=lambda: 0.0)
    state.apply(_welcome([]))
    for seq, message_id in enumerate(("m-1", "m-2", "m-3"), start=1):
        state.apply(_queued(seq, message_id))
    assert [t.id for t in state.queue] == ["m-1", "m-2", "m-3"]
    assert state.turns == []
    state.apply(Unqueued(seq=4, messages=["m-1"], reason="started"))
    state.apply(Unqueued(seq=5, messages=["m-3", "m-2", "nope"], reason="cleared"))
    assert state.queue == []
    assert [(t.id, t.queued, t.withdrawn) for t in state.turns] == [
        ("m-1", False, False),
        ("m-3", False, True),
        ("m-2", False, True),
    ]


def test_a_snapshot_sorts_queued_and_withdrawn_messages_and_replies_name_what_they_replace() -> (
    None
):
    state = RoomState(clock=lambda: 0.0)
    user = HistoryMessage(id="m-1", role="user", text="q", status="complete", ts=1, author=BOB)
    old = HistoryMessage(
        id="r-1", role="assistant", text="a", status="error", ts=1, model="a", reply_to="m-1"
    )
    state.apply(
        _welcome(
            [
                user,
                old,
                HistoryMessage(
                    id="m-2", role="user", text="w", status="complete", ts=2, withdrawn=True
                ),
                HistoryMessage(
                    id="m-3", role="user", text="q", status="complete", ts=3, queued=True
                ),
            ]
        )
    )
    assert [t.id for t in state.queue] == ["m-3"]
    assert [(t.id, t.withdrawn) for t in state.turns] == [("m-1", False), ("m-2", True)]
    state.apply(
        StreamStart(
            seq=1, stream="s", model="a", message="r-2", reply_to="m-1", ts=5, replaces="r-1"
        )
    )
    assert [(r.id, r.replaces) for r in state.turns[0].replies] == [("r-1", None), ("r-2", "r-1")]
    assert state.lanes()["a"].id == "r-2"
