"""One stream of a router: its choice of model, its candidates, and the switches it makes.

A :class:`RoutedStream` is made when a prompt names a router. Its rules' choice is known at
once (:attr:`RoutedStream.first`); :meth:`RoutedStream.choose` asks the classifier, if the
router has one. :meth:`RoutedStream.deltas` streams from the candidates in order: each switch
before a first token publishes ``model_switch``, records the model answering in the store,
and counts the failed model's error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Protocol

from rtserver.errors import ProviderError
from rtserver.ops.metrics import Metrics
from rtserver.protocol.frames import ModelSwitch, RoomEvent
from rtserver.providers.base import Delta, GenerationRequest
from rtserver.providers.catalog import Model
from rtserver.turns.fallback import routed_deltas, switch_reason
from rtserver.turns.router import Choice
from rtserver.turns.routing import Routing

log = logging.getLogger(__name__)

#: Publishes a room event (the room numbers it).
Publish = Callable[[RoomEvent], object]
#: The request for a candidate, from the first candidate's (its own parameters and caps).
Retarget = Callable[[Model, GenerationRequest], GenerationRequest]
#: Publishes the stream's ``stream_start`` once its model is chosen; ``stopped``: it was stopped
#: before the choice was made, and starts (and ends) with the rules' choice.
Announce = Callable[["RoutedStream", bool], None]
#: Said of a stream stopped before its router had chosen.
STOPPED_WHILE_ROUTING = "stopped while routing"


class ModelRecorder(Protocol):
    """Where the model answering a reply is recorded: a room's Store, or nothing at all."""

    async def switch_model(self, message_id: str, model: str) -> None: ...


def _same_request(model: Model, request: GenerationRequest) -> GenerationRequest:
    return request


class RoutedStream:
    """The routing of one stream of router ``router_id`` for a prompt's ``text``."""

    def __init__(
        self,
        *,
        router_id: str,
        text: str,
        stream: str,
        message_id: str,
        routing: Routing,
        publish: Publish,
        store: ModelRecorder,
        metrics: Metrics | None = None,
        retarget: Retarget = _same_request,
        announce: Announce | None = None,
    ) -> None:
        self.router_id = router_id
        self.stream = stream
        self._text = text
        self._message_id = message_id
        self._routing = routing
        self._publish = publish
        self._store = store
        self._metrics = metrics
        self._retarget = retarget
        self._announce = announce
        self.announced = False
        #: True once :meth:`deltas` was asked for: the candidates are tried once per stream.
        self.streamed = False
        #: ``stream_start.route_reason``, once announced: why this model, in a few words.
        self.reason = ""
        self._writes: set[asyncio.Task[None]] = set()
        #: The rules' choice: what the stream starts with when it is stopped while routing.
        self.first = routing.first_choice(router_id, text)
        self.choice = self.first
        self._candidates = routing.candidates(self.first)
        #: The model answering now (the first candidate until the choice is made).
        self.model = self._candidates[0]

    @property
    def needs_asking(self) -> bool:
        """True when the router has a classifier to ask before the stream starts."""
        router = self._routing.router(self.router_id)
        return router is not None and router.classifier is not None

    async def choose(self) -> Choice:
        """Ask the classifier (bounded by its timeout), else keep the rules' choice."""
        if self.needs_asking:
            choice = await self._routing.choose(self.router_id, self._text)
            self.choice = choice
            self._candidates = self._routing.candidates(choice)
            if self._candidates[0] is not self.model:
                self.model = self._candidates[0]
                self._record_soon(self.model.id)
        return self.choice

    def announce(self, *, stopped: bool = False) -> None:
        """Publish ``stream_start`` (through the hook), once; later calls do nothing."""
        if self.announced:
            return
        self.announced = True
        if stopped:
            self.reason = f"{self.choice.reason} ({STOPPED_WHILE_ROUTING})"
        else:
            self.reason = self.choice.reason
        if self._announce is not None:
            self._announce(self, stopped)

    def deltas(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        """The stream's deltas, from the first candidate that gets to its first token.

        ``request`` is the first candidate's; each other gets it retargeted to itself.
        """
        self.streamed = True
        first = self._candidates[0]

        def request_for(model: Model) -> GenerationRequest:
            return request if model is first else self._retarget(model, request)

        return routed_deltas(self._candidates, request_for, on_switch=self._switched)

    def _switched(self, failed: Model, to: Model, error: ProviderError) -> None:
        self.model = to
        if self._metrics is not None:
            self._metrics.provider_errors.labels(failed.id, error.code).inc()
        log.info(
            "routed stream switched model",
            extra={"model": failed.id, "code": error.code, "to": to.id, "stream": self.stream},
        )
        self._publish(
            ModelSwitch(seq=0, stream=self.stream, model=to.id, reason=switch_reason(failed, error))
        )
        self._record_soon(to.id)

    def _record_soon(self, model_id: str) -> None:
        task = asyncio.create_task(self._record(model_id))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _record(self, model_id: str) -> None:
        try:
            await self._store.switch_model(self._message_id, model_id)
        except Exception:
            # The stream goes on; the stored reply then names the model that started it.
            log.exception("could not record the switch of reply %s", self._message_id)

    async def settled(self) -> None:
        """Return once every switch is recorded in the store (before the reply is final)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
