"""Prometheus metrics of one server, in a registry of its own, and its OpenTelemetry spans.

Each application holds its own :class:`Metrics` (``web.AppKey`` METRICS), never the module-global
default registry, so several servers in one process (tests) do not share counts. The token path
pays no label lookup: a generation binds its model's children once, and counts its tokens in
batches (:meth:`StreamMeter.tokens`).

Spans: a ``turn`` span while a prompt starts its streams, and one ``generate <model>`` span per
stream (the provider call), current while the stream runs so that instrumented HTTP clients
nest under it. They go to the tracer provider given, or OpenTelemetry's global one (set by
``opentelemetry-instrument``, say); without an SDK they cost next to nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from opentelemetry import context, trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ResumeKind = Literal["replay", "snapshot"]

#: Seconds to a first token: from a fast local model to a slow cold start.
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


class Metrics:
    """The server's metrics; the names are part of its documented interface."""

    def __init__(self, *, tracer_provider: trace.TracerProvider | None = None) -> None:
        provider = tracer_provider or trace.get_tracer_provider()
        self.tracer = provider.get_tracer("rtserver")
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge(
            "rtserver_connections", "Participants connected (WebSocket and SSE).", registry=r
        )
        self.rooms = Gauge("rtserver_rooms", "Rooms open in memory.", registry=r)
        self.streams_running = Gauge(
            "rtserver_streams_running", "Model streams generating now.", registry=r
        )
        self.stream_ends = Counter(
            "rtserver_stream_ends",
            "Model streams ended, by model and reason.",
            ["model", "reason"],
            registry=r,
        )
        self.ttft = Histogram(
            "rtserver_ttft_seconds",
            "Seconds from a stream's start to its first token.",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "rtserver_tokens", "Token deltas streamed to rooms, by model.", ["model"], registry=r
        )
        self.slow_consumer_drops = Counter(
            "rtserver_slow_consumer_drops",
            "Participants closed with 4000 because their outbox filled.",
            registry=r,
        )
        self.resumes = Counter(
            "rtserver_resumes",
            "Joins that named `since`: replayed exactly, or given a snapshot.",
            ["kind"],
            registry=r,
        )
        self.provider_errors = Counter(
            "rtserver_provider_errors",
            "Streams that ended in an error, by model and error code.",
            ["model", "code"],
            registry=r,
        )
        self.prompts = Counter(
            "rtserver_prompts",
            "Prompts that started a turn (interrupts with text too).",
            registry=r,
        )
        for kind in ("replay", "snapshot"):
            self.resumes.labels(kind)

    def watch_rooms(self, count: Callable[[], int]) -> None:
        """Read the number of open rooms from ``count`` at each scrape."""
        self.rooms.set_function(count)

    def joined(self, resume: ResumeKind | None) -> None:
        self.connections.inc()
        if resume is not None:
            self.resumes.labels(resume).inc()

    def left(self) -> None:
        self.connections.dec()

    def stream(
        self, model: str, *, stream: str | None = None, room: str | None = None
    ) -> StreamMeter:
        """The meter of one new stream of ``model``; counts it running until it ends."""
        return StreamMeter(self, model, stream=stream, room=room)

    @contextmanager
    def turn(self, *, room: str, prompt: str) -> Iterator[None]:
        """A span around starting a turn's streams, whose spans it parents."""
        attributes = {"rtserver.room": room, "rtserver.prompt_id": prompt}
        with self.tracer.start_as_current_span("turn", attributes=attributes):
            yield

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class StreamMeter:
    """One stream's metrics, its labelled children bound once, and its span."""

    __slots__ = ("_count", "_metrics", "_model", "_span", "_tokens", "_ttft")

    def __init__(
        self, metrics: Metrics, model: str, *, stream: str | None, room: str | None
    ) -> None:
        self._metrics = metrics
        self._model = model
        self._tokens = metrics.tokens.labels(model)
        self._ttft = metrics.ttft.labels(model)
        self._count = 0
        attributes = {"rtserver.model": model}
        attributes.update(
            {k: v for k, v in (("rtserver.stream", stream), ("rtserver.room", room)) if v}
        )
        self._span = metrics.tracer.start_span(
            f"generate {model}", kind=trace.SpanKind.CLIENT, attributes=attributes
        )
        metrics.streams_running.inc()

    def enter(self) -> None:
        """Make the stream's span current in the calling task (the generation's own)."""
        context.attach(trace.set_span_in_context(self._span))

    def first_token(self, seconds: float) -> None:
        self._ttft.observe(seconds)
        self._span.add_event("first token", {"rtserver.ttft_s": seconds})

    def tokens(self, count: int) -> None:
        """Add a batch of ``count`` token deltas to ``rtserver_tokens_total``."""
        self._tokens.inc(count)
        self._count += count

    def ended(self, reason: str, error_code: str | None) -> None:
        span = self._span
        span.set_attribute("rtserver.reason", reason)
        span.set_attribute("rtserver.tokens", self._count)
        if error_code is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, error_code))
        span.end()
        metrics = self._metrics
        metrics.streams_running.dec()
        metrics.stream_ends.labels(self._model, reason).inc()
        if error_code is not None:
            metrics.provider_errors.labels(self._model, error_code).inc()
