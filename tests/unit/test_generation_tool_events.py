"""What a generation publishes, and keeps, as its tool runner reports: approvals asked and
given, and results, including a record that lacks a name or a duration."""

from __future__ import annotations

from rtserver.protocol.frames import (
    Participant,
    StreamEnd,
    ToolApprovalEvent,
    ToolCallRecord,
    ToolDecisionEvent,
    ToolResultEvent,
)
from rtserver.providers.base import ToolCallDelta
from rtserver.store.sqlite import SqliteStore
from tests.unit.test_generation import Scripted, _generation, store
from tests.unit.test_generation_numbers import Deltas
from tests.unit.test_reasoning_generation import _run

__all__ = ["store"]  # the fixture, used by name

ANN = Participant(id="p_ann", name="ann")


async def test_a_decided_call_no_longer_waits_and_each_step_is_published(
    store: SqliteStore,
) -> None:
    generation, sink = await _generation(store, Scripted())
    generation.approval("c1", "search", '{"q": 1}')
    generation.approval("c2", "fetch", "{}")
    assert generation.waiting == ["c1", "c2"]
    generation.decision("c1", True, ANN)
    assert generation.waiting == ["c2"]
    assert sink.events == [
        ToolApprovalEvent(seq=1, stream="s1", call="c1", name="search", args='{"q": 1}'),
        ToolApprovalEvent(seq=2, stream="s1", call="c2", name="fetch", args="{}"),
        ToolDecisionEvent(seq=3, stream="s1", call="c1", allow=True, by=ANN),
    ]


async def test_a_decision_for_a_call_that_waits_no_more_is_still_published(
    store: SqliteStore,
) -> None:
    generation, sink = await _generation(store, Scripted())
    generation.decision("gone", False, None)
    assert generation.waiting == []
    assert sink.events == [ToolDecisionEvent(seq=1, stream="s1", call="gone", allow=False)]


async def test_a_result_is_kept_and_published_with_its_name_and_duration(
    store: SqliteStore,
) -> None:
    generation, sink = await _generation(store, Scripted())
    record = ToolCallRecord(call="c1", name="search", args="{}", result="42", duration_ms=7)
    generation.result(record)
    assert generation.tool_calls == [record]
    assert sink.events == [
        ToolResultEvent(seq=1, stream="s1", call="c1", name="search", duration_ms=7, result="42")
    ]


async def test_a_result_without_a_name_or_a_duration_is_published_with_empty_ones(
    store: SqliteStore,
) -> None:
    generation, sink = await _generation(store, Scripted())
    generation.result(ToolCallRecord(call="c1", result="ok"))
    assert sink.events == [
        ToolResultEvent(seq=1, stream="s1", call="c1", name="", duration_ms=0, result="ok")
    ]


async def test_a_tool_calls_token_count_from_the_provider_is_its_usage() -> None:
    provider = Deltas(ToolCallDelta(call="c1", args='{"q": "a long question"}', name="f", tokens=4))
    sink, _ = await _run(provider)
    end = sink.events[-1]
    assert isinstance(end, StreamEnd)
    assert end.usage is not None
    assert end.usage.output_tokens == 4, "the provider's count, not one from the characters"
