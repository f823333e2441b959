"""OpenTelemetry: a span per turn, and per stream (the provider call), with what happened."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import aiohttp
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rtserver.config import ModelSpec
from rtserver.providers.base import Delta, FinishDelta, GenerationRequest, TextDelta
from tests.conftest import ServerFactory, ws_url
from tests.integration.test_ops import Failing
from tests.support import RoomClient, fast_settings


class SeesItsSpan:
    """Records the span current while it streams, as an instrumented HTTP client would."""

    kind = "demo"

    def __init__(self) -> None:
        self.span_id: int | None = None

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self.span_id = trace.get_current_span().get_span_context().span_id
        yield TextDelta("hi")
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None


async def test_turn_and_stream_spans(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seer = SeesItsSpan()
    models = (
        ModelSpec(id="seer", provider="demo", default=True),
        ModelSpec(id="failing", provider="demo"),
    )
    server = await start_server(
        fast_settings(db_path, models=models),
        providers={"seer": seer, "failing": Failing()},
        tracer_provider=provider,
    )
    alice = await RoomClient.connect(http, ws_url(server, "traced"))
    await alice.send({"type": "prompt", "id": "p1", "text": "go", "models": ["seer", "failing"]})
    await alice.wait_count("stream_end", 2)
    await alice.close()

    spans = {span.name: span for span in exporter.get_finished_spans()}
    turn, seen, failed = spans["turn"], spans["generate seer"], spans["generate failing"]
    assert turn.attributes is not None
    assert turn.attributes["rtserver.prompt_id"] == "p1"
    for span in (seen, failed):
        assert span.parent is not None
        assert span.parent.span_id == turn.context.span_id
        assert span.attributes is not None
        assert span.attributes["rtserver.room"] == "traced"
        assert [event.name for event in span.events] == ["first token"]
    assert seer.span_id == seen.context.span_id
    assert seen.attributes is not None
    assert seen.attributes["rtserver.reason"] == "complete"
    assert seen.attributes["rtserver.tokens"] == 1
    assert seen.status.is_ok
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert failed.status.description == "provider_error"
    streams = {f["model"]: f["stream"] for f in alice.of_type("stream_start")}
    assert seen.attributes["rtserver.stream"] == streams["seer"]
