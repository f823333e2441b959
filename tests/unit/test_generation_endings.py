"""How a generation ends, and what its stream_end and stored reply then say: a length cut, an
internal failure, a preparation cancelled from below, the vendor's usage, and the tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from rtserver.config import ModelSpec
from rtserver.errors import ProviderError
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    ModelInfo,
    StreamEnd,
    TokenEvent,
    ToolCallRecord,
    Usage,
)
from rtserver.providers.base import (
    ChatTurn,
    Delta,
    FinishDelta,
    GenerationRequest,
    TextDelta,
    UsageDelta,
)
from rtserver.providers.catalog import Model
from rtserver.store.sqlite import SqliteStore
from rtserver.turns.generation import Generation
from tests.unit.test_generation import Sink, _end

ASKED = GenerationRequest(messages=(ChatTurn("user", "what is two and two?"),))


class Said:
    """A model that records each request it is asked, sends ``deltas``, then raises ``fail``."""

    kind = "test"

    def __init__(self, *deltas: Delta, fail: Exception | None = None) -> None:
        self.deltas = deltas
        self.fail = fail
        self.requests: list[GenerationRequest | None] = []

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self.requests.append(request)
        for delta in self.deltas:
            yield delta
        if self.fail is not None:
            raise self.fail

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "g.db")
    try:
        yield opened
    finally:
        await opened.close()


async def _generation(
    store: SqliteStore,
    provider: Said,
    *,
    prepare: Callable[[], Awaitable[GenerationRequest]] | None = None,
    **kwargs: Any,
) -> tuple[Generation, Sink]:
    user = HistoryMessage(id="u1", role="user", text="hi", status="complete", ts=1)
    reply = HistoryMessage(
        id="r1", role="assistant", text="", status="streaming", ts=1, model="m", reply_to="u1"
    )
    await store.start_turn("room", user, "p1", [reply])
    sink = Sink()

    async def asked() -> GenerationRequest:
        return ASKED

    generation = Generation(
        stream="s1",
        model=Model(
            spec=ModelSpec(id="m", provider="demo"),
            provider=provider,
            info=ModelInfo(id="m", label="m", provider="demo"),
        ),
        reply=reply,
        prepare=prepare or asked,
        sink=sink,
        finished=sink.reply_finished,
        store=store,
        checkpoint_interval=60,
        **kwargs,
    )
    return generation, sink


async def _stored(store: SqliteStore) -> HistoryMessage:
    [reply] = [m for m in await store.recent("room", 5) if m.role == "assistant"]
    return reply


async def _ran(store: SqliteStore, provider: Said, **kwargs: Any) -> tuple[StreamEnd, Sink]:
    generation, sink = await _generation(store, provider, **kwargs)
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    return _end(sink), sink


async def test_a_reply_cut_at_its_length_limit_ends_as_length_and_is_kept_as_complete(
    store: SqliteStore,
) -> None:
    provider = Said(TextDelta("two and"), FinishDelta("length"))
    end, sink = await _ran(store, provider)
    assert end.reason == "length"
    assert sink.finished[0].status == "complete"
    stored = await _stored(store)
    assert (stored.text, stored.status) == ("two and", "complete")
    # A reply without thinking is stored without any.
    assert stored.reasoning is None
    assert provider.requests == [ASKED], "the model is asked what prepare made"


async def test_an_unexpected_failure_tells_the_room_and_the_store_only_that_the_server_failed(
    store: SqliteStore,
) -> None:
    end, _ = await _ran(store, Said(TextDelta("ok"), fail=KeyError("sk-secret")))
    internal = ErrorInfo(code="internal", message="the server failed while generating")
    assert (end.reason, end.error) == ("error", internal)
    stored = await _stored(store)
    assert (stored.status, stored.error, stored.text) == ("error", internal, "ok")


async def test_a_provider_error_is_stored_with_the_reply(store: SqliteStore) -> None:
    failure = ProviderError("rate_limited", "slow down", retry_after=2.0)
    end, _ = await _ran(store, Said(TextDelta("par"), fail=failure))
    stored = await _stored(store)
    assert end.error == ErrorInfo(code="rate_limited", message="slow down", retry_after=2.0)
    assert stored.error == end.error


async def test_a_preparation_cancelled_from_below_ends_the_stream_as_interrupted(
    store: SqliteStore,
) -> None:
    """A lane read cancelled under the stream (not a stop of it) still ends it, interrupted."""
    lane: asyncio.Future[GenerationRequest] = asyncio.get_running_loop().create_future()
    reading = asyncio.Event()
    provider = Said(TextDelta("never"))

    async def prepare() -> GenerationRequest:
        reading.set()
        return await lane

    generation, sink = await _generation(store, provider, prepare=prepare)
    generation.start()
    await asyncio.wait_for(reading.wait(), 5)
    lane.cancel()
    await asyncio.wait_for(generation.wait(), 10)
    assert _end(sink).reason == "interrupted"
    assert not generation.stopping, "nobody asked it to stop"
    assert provider.requests == []
    assert (await _stored(store)).status == "interrupted"


async def test_a_rate_from_the_vendors_counts_is_not_marked_estimated(store: SqliteStore) -> None:
    readings = iter((10.0, 10.5, 12.5))
    provider = Said(TextDelta("a"), TextDelta("b"), UsageDelta(input_tokens=7, output_tokens=5))
    end, _ = await _ran(store, provider, clock=lambda: next(readings))
    assert (end.usage, end.tokens_per_s) == (Usage(input_tokens=7, output_tokens=5), 2.0)
    assert end.tokens_per_s_estimated is False


async def test_usage_reported_without_any_token_has_no_rate(store: SqliteStore) -> None:
    provider = Said(UsageDelta(input_tokens=3, output_tokens=5))
    end, _ = await _ran(store, provider)
    assert end.reason == "complete"
    assert end.usage == Usage(input_tokens=3, output_tokens=5)
    assert (end.ttft_ms, end.tokens_per_s, end.tokens_per_s_estimated) == (None, None, False)


async def test_a_token_carries_the_providers_stamp_and_its_count_is_the_estimate(
    store: SqliteStore,
) -> None:
    provider = Said(TextDelta("a dozen chars", emitted_us=1_700_000_000_123_456, tokens=2))
    end, sink = await _ran(store, provider)
    [token] = [e for e in sink.events if isinstance(e, TokenEvent)]
    assert (token.text, token.emitted_us) == ("a dozen chars", 1_700_000_000_123_456)
    assert end.usage is not None
    assert (end.usage.output_tokens, end.usage.estimated) == (2, True), "not 13 chars / 4"


async def test_stop_and_wait_before_start_do_nothing(store: SqliteStore) -> None:
    generation, sink = await _generation(store, Said(TextDelta("yes")))
    generation.stop("cancelled")
    assert not generation.stopping, "there is no stream to stop yet"
    await asyncio.wait_for(generation.wait(), 1)
    assert sink.events == []
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    assert _end(sink).reason == "complete"
    assert (await _stored(store)).text == "yes"


async def test_a_stream_stopped_before_its_request_counts_no_prompt(store: SqliteStore) -> None:
    """Usage estimated before any request was prepared: an empty prompt, not a failure."""
    generation, sink = await _generation(store, Said(TextDelta("never")))
    # A result reported through the generation's ToolReporter side, before the task runs.
    generation.result(ToolCallRecord(call="c1", name="f", args="{}", result="done"))
    generation.start()
    generation.stop("interrupted")
    await asyncio.wait_for(generation.wait(), 10)
    end = _end(sink)
    assert end.reason == "interrupted"
    assert end.usage == Usage(input_tokens=1, output_tokens=1, estimated=True)
