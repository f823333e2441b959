"""A generation always ends with one stream_end, however it is stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from rtserver.config import ModelSpec
from rtserver.errors import ProviderError
from rtserver.ops.metrics import StreamMeter
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    ModelInfo,
    RoomEvent,
    StreamEnd,
    TokenEvent,
    ToolCallEvent,
)
from rtserver.providers.base import Delta, GenerationRequest, TextDelta, ToolCallDelta
from rtserver.providers.catalog import Model
from rtserver.store.sqlite import SqliteStore
from rtserver.turns.generation import TRANSITIONS, Generation, Phase


class Sink:
    def __init__(self) -> None:
        self.events: list[RoomEvent] = []
        self.finished: list[HistoryMessage] = []
        self._changed = asyncio.Event()

    async def wait_events(self, count: int, timeout: float = 5.0) -> None:
        """Wait until at least ``count`` events were published."""
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()

    def publish(self, event: RoomEvent) -> int:
        """Number the event, as a room's log does."""
        self.events.append(msgspec.structs.replace(event, seq=len(self.events) + 1))
        self._changed.set()
        return len(self.events)

    def reply_finished(self, generation: Generation, message: HistoryMessage) -> None:
        self.finished.append(message)


class Scripted:
    kind = "test"

    def __init__(self, *texts: str, fail: ProviderError | None = None, hang: bool = False) -> None:
        self.texts = texts
        self.fail = fail
        self.hang = hang
        self.closed = asyncio.Event()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        try:
            for text in self.texts:
                yield TextDelta(text)
            if self.fail:
                raise self.fail
            if self.hang:
                await asyncio.Event().wait()
        finally:
            self.closed.set()

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A store that is closed however the test ends (its worker thread would outlive pytest)."""
    opened = await SqliteStore.open(tmp_path / "g.db")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def running() -> AsyncIterator[list[Generation]]:
    """Generations a test started; any still running at its end are stopped and awaited."""
    started: list[Generation] = []
    yield started
    for generation in started:
        generation.stop("cancelled")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(generation.wait(), 5)


@pytest.fixture
def make(
    store: SqliteStore, running: list[Generation]
) -> Callable[[Scripted], Awaitable[tuple[Generation, Sink]]]:
    async def build(provider: Scripted) -> tuple[Generation, Sink]:
        generation, sink = await _generation(store, provider)
        running.append(generation)
        return generation, sink

    return build


Make = Callable[[Scripted], Awaitable[tuple[Generation, Sink]]]


async def _generation(store: SqliteStore, provider: Scripted) -> tuple[Generation, Sink]:
    user = HistoryMessage(id="u1", role="user", text="hi", status="complete", ts=1)
    reply = HistoryMessage(
        id="r1", role="assistant", text="", status="streaming", ts=1, model="m", reply_to="u1"
    )
    await store.start_turn("room", user, "p1", [reply])
    sink = Sink()

    async def prepare() -> GenerationRequest:
        return GenerationRequest(messages=())

    spec = ModelSpec(id="m", provider="demo")
    generation = Generation(
        stream="s1",
        model=Model(spec=spec, provider=provider, info=ModelInfo(id="m", label="m", provider="x")),
        reply=reply,
        prepare=prepare,
        sink=sink,
        finished=sink.reply_finished,
        store=store,
        checkpoint_interval=0.01,
    )
    return generation, sink


def _end(sink: Sink) -> StreamEnd:
    ends = [e for e in sink.events if isinstance(e, StreamEnd)]
    assert len(ends) == 1
    assert sink.events[-1] is ends[0]
    return ends[0]


async def test_stop_before_the_task_begins_still_ends_the_stream(
    make: Make, store: SqliteStore
) -> None:
    generation, sink = await make(Scripted("never"))
    generation.start()
    generation.stop("cancelled")
    await asyncio.wait_for(generation.wait(), 10)
    assert _end(sink).reason == "cancelled"
    assert not [e for e in sink.events if isinstance(e, TokenEvent)]
    assert sink.finished[0].status == "cancelled"


async def test_cancel_mid_stream_closes_the_provider_and_keeps_partial_text(
    make: Make, store: SqliteStore
) -> None:
    provider = Scripted("a", "b", hang=True)
    generation, sink = await make(provider)
    generation.start()
    await sink.wait_events(2)
    generation.stop("interrupted")
    await asyncio.wait_for(generation.wait(), 10)
    assert provider.closed.is_set()
    end = _end(sink)
    assert end.reason == "interrupted"
    assert end.usage is not None
    assert end.usage.estimated
    stored = await store.recent("room", 5)
    assert (stored[-1].text, stored[-1].status) == ("ab", "interrupted")


async def test_provider_error_ends_with_its_code_and_keeps_text(
    make: Make, store: SqliteStore
) -> None:
    failure = ProviderError("rate_limited", "slow down", retry_after=2.0)
    generation, sink = await make(Scripted("x", fail=failure))
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    end = _end(sink)
    assert end.reason == "error"
    assert end.error is not None
    assert (end.error.code, end.error.retry_after) == ("rate_limited", 2.0)
    assert sink.finished[0].text == "x"


async def test_unexpected_exception_becomes_internal_without_its_text(
    make: Make, store: SqliteStore
) -> None:
    class Broken(Scripted):
        async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
            yield TextDelta("ok")
            raise RuntimeError("secret-key-sk-123 leaked?")

    generation, sink = await make(Broken())
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    end = _end(sink)
    assert end.error is not None
    assert end.error.code == "internal"
    assert "secret" not in end.error.message


async def test_stop_while_the_reply_is_being_finalised_still_publishes_stream_end(
    make: Make, store: SqliteStore
) -> None:
    """A cancel that lands while a finished reply is being saved must not swallow its end.

    Otherwise the stream stays running in its room for good: every later prompt is ``busy``.
    """
    generation, sink = await make(Scripted("a", "b"))
    saving = asyncio.Event()
    release = asyncio.Event()
    finish = store.finish_reply

    async def slow_finish(message_id: str, **fields: Any) -> None:
        saving.set()
        await release.wait()
        await finish(message_id, **fields)

    store.finish_reply = slow_finish  # type: ignore[method-assign]
    generation.start()
    await asyncio.wait_for(saving.wait(), 5)
    generation.stop("cancelled")
    assert not generation.stopping, "a reply being finalised has its reason already"
    release.set()
    await asyncio.wait_for(generation.wait(), 5)
    end = _end(sink)
    assert end.reason == "complete"
    assert [m.status for m in sink.finished] == ["complete"]
    stored = await store.recent("room", 5)
    assert (stored[-1].text, stored[-1].status) == ("ab", "complete")


async def test_a_failed_checkpoint_is_retried_and_the_stream_goes_on(
    make: Make, store: SqliteStore
) -> None:
    provider = Scripted("a", "b", hang=True)
    generation, sink = await make(provider)
    real = store.checkpoint
    failures = 0

    async def flaky(message_id: str, text: str, reasoning: str | None = None) -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise OSError("disk full")
        await real(message_id, text, reasoning)

    store.checkpoint = flaky  # type: ignore[method-assign]
    generation.start()
    async with asyncio.timeout(5):
        while (await store.recent("room", 5))[-1].text != "ab":  # noqa: ASYNC110 - polls the DB
            await asyncio.sleep(0.01)
    assert failures == 2
    generation.stop("cancelled")
    await asyncio.wait_for(generation.wait(), 10)
    assert _end(sink).reason == "cancelled"


class Calls(Scripted):
    """A model that only calls tools: ``fragments`` are (call, name, args)."""

    def __init__(self, *fragments: tuple[str, str | None, str]) -> None:
        super().__init__()
        self.fragments = fragments

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        for call, name, args in self.fragments:
            yield ToolCallDelta(call=call, name=name, args=args)


async def test_tool_call_fragments_are_numbered_joined_and_kept(
    make: Make, store: SqliteStore
) -> None:
    provider = Calls(("c1", "lookup", '{"q":'), ("c2", None, "[]"), ("c1", None, " 1}"))
    generation, sink = await make(provider)
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    calls = [e for e in sink.events if isinstance(e, ToolCallEvent)]
    assert [(e.seq, e.call, e.name, e.args) for e in calls] == [
        (1, "c1", "lookup", '{"q":'),
        (2, "c2", None, "[]"),
        (3, "c1", None, " 1}"),
    ]
    end = _end(sink)
    # A reply of tool calls alone still has a first token: its first fragment.
    assert end.ttft_ms is not None
    stored = (await store.recent("room", 5))[-1]
    assert stored.tool_calls is not None
    assert [(c.call, c.name, c.args) for c in stored.tool_calls] == [
        ("c1", "lookup", '{"q": 1}'),
        ("c2", None, "[]"),
    ]


async def test_the_first_stop_decides_the_reason(make: Make, store: SqliteStore) -> None:
    generation, sink = await make(Scripted("a", hang=True))
    generation.start()
    await sink.wait_events(1)
    generation.stop("cancelled")
    generation.stop("interrupted")
    await asyncio.wait_for(generation.wait(), 10)
    assert _end(sink).reason == "cancelled"
    assert sink.finished[0].status == "cancelled"


async def test_an_ended_generation_leaves_no_task_behind(make: Make, store: SqliteStore) -> None:
    generation, _ = await make(Scripted("a", "b"))
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)

    def left() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    # The cancelled checkpoint loop ends at its next step: wait for that, not longer.
    async with asyncio.timeout(5):
        while left():  # noqa: ASYNC110 - tasks have no "all ended" event to wait on
            await asyncio.sleep(0)


def test_the_phase_table_leads_from_pending_to_ended_and_no_further() -> None:
    reachable = {Phase.PENDING}
    frontier = [Phase.PENDING]
    while frontier:
        for following in TRANSITIONS[frontier.pop()]:
            if following not in reachable:
                reachable.add(following)
                frontier.append(following)
    assert reachable == set(Phase)
    assert TRANSITIONS[Phase.ENDED] == frozenset()
    assert all(Phase.ENDING in TRANSITIONS[p] for p in (Phase.PENDING, Phase.PREPARING))


@pytest.mark.parametrize(
    ("stop", "texts", "phases", "reason"),
    [
        pytest.param(
            None,
            ("a", "b"),
            [Phase.PREPARING, Phase.STREAMING, Phase.ENDING, Phase.ENDED],
            "complete",
            id="complete",
        ),
        pytest.param("before", ("a",), [Phase.ENDING, Phase.ENDED], "cancelled", id="stop-pending"),
        pytest.param(
            "streaming",
            ("a",),
            [Phase.PREPARING, Phase.STREAMING, Phase.ENDING, Phase.ENDED],
            "cancelled",
            id="stop-streaming",
        ),
    ],
)
async def test_every_path_moves_by_the_table_and_ends_once(
    make: Make,
    monkeypatch: pytest.MonkeyPatch,
    stop: str | None,
    texts: tuple[str, ...],
    phases: list[Phase],
    reason: str,
) -> None:
    generation, sink = await make(Scripted(*texts, hang=stop == "streaming"))
    assert generation.phase is Phase.PENDING
    seen: list[Phase] = []
    enter = generation._enter

    def record(phase: Phase) -> None:
        seen.append(phase)
        enter(phase)

    monkeypatch.setattr(generation, "_enter", record)
    generation.start()
    if stop == "before":
        generation.stop("cancelled")
    elif stop == "streaming":
        await sink.wait_events(1)
        generation.stop("cancelled")
    await asyncio.wait_for(generation.wait(), 10)
    assert seen == phases
    assert generation.phase.value == Phase.ENDED.value
    assert _end(sink).reason == reason
    with pytest.raises(RuntimeError):
        generation._enter(Phase.STREAMING)


async def test_an_ended_stream_is_logged_with_its_model_reason_code_and_duration(
    make: Make, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    failure = ProviderError("rate_limited", "slow down", retry_after=2.0)
    generation, _ = await make(Scripted("x", fail=failure))
    with caplog.at_level(logging.INFO, logger="rtserver.turns.generation"):
        generation.start()
        await asyncio.wait_for(generation.wait(), 10)
    [record] = [r for r in caplog.records if r.getMessage() == "stream ended"]
    fields = {k: getattr(record, k) for k in ("model", "reason", "code")}
    assert fields == {"model": "m", "reason": "error", "code": "rate_limited"}
    assert isinstance(record.duration_ms, int | float)  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]


async def test_a_failed_generation_is_logged_with_its_stream_and_traceback(
    make: Make, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Scripted):
        async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
            yield TextDelta("ok")
            raise RuntimeError("boom")

    generation, _ = await make(Broken())
    with caplog.at_level(logging.ERROR, logger="rtserver.turns.generation"):
        generation.start()
        await asyncio.wait_for(generation.wait(), 10)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "generation s1 failed"
    assert record.exc_info is not None


class EndMeter:
    """Records how a generation tells its meter it ended."""

    def __init__(self) -> None:
        self.ends: list[tuple[str, str | None]] = []

    def enter(self) -> None:
        pass

    def first_token(self, seconds: float) -> None:
        pass

    def tokens(self, count: int) -> None:
        pass

    def ended(self, reason: str, error_code: str | None) -> None:
        self.ends.append((reason, error_code))


async def test_the_final_reply_is_the_whole_stored_message_and_the_meter_hears_the_end(
    store: SqliteStore,
) -> None:
    failure = ProviderError("rate_limited", "slow down")
    generation, sink = await _generation(store, Scripted("par", "tial", fail=failure))
    meter = EndMeter()
    generation._meter = cast(StreamMeter, meter)
    ended_by: list[Generation] = []

    def finished(ended: Generation, message: HistoryMessage) -> None:
        ended_by.append(ended)
        sink.finished.append(message)

    generation._finished = finished
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    [final] = sink.finished
    assert final == HistoryMessage(
        id="r1",
        role="assistant",
        text="partial",
        status="error",
        ts=1,
        model="m",
        reply_to="u1",
        usage=final.usage,
        stream="s1",
        error=ErrorInfo(code="rate_limited", message="slow down"),
    )
    assert final.usage is not None
    assert final.usage.estimated
    assert ended_by == [generation]
    assert meter.ends == [("error", "rate_limited")]
    end = _end(sink)
    assert end.stream == "s1"
    assert end.tokens_per_s_estimated is (end.tokens_per_s is not None)
