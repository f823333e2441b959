"""The turns of one room: what clients ask for, checked, stored and run as generations.

A :class:`Turns` holds one :class:`~rtserver.room.room.Room` and does everything in it that
needs I/O or policy: it validates client frames, applies grants, rate limits and daily budgets,
resolves models, runs the store's transactions (the user message is durable before anyone hears
of it) and starts and stops the generations whose events the room publishes. What runs when is
decided in one place, :meth:`Turns._admit`, and :meth:`Turns._streams_ended` is where the room
moves on once the running streams have ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from rtserver.auth.limits import DailyBudget
from rtserver.auth.ratelimit import refuse_if_waiting
from rtserver.config import Limits
from rtserver.errors import PeerError
from rtserver.ops.metrics import Metrics
from rtserver.protocol.codec import Codec
from rtserver.protocol.frames import (
    Cancel,
    ClientFrame,
    Hello,
    HistoryMessage,
    Interrupt,
    MessageEvent,
    Params,
    Ping,
    Pong,
    Prompt,
    ServerFrame,
    Since,
    StreamStart,
    Typing,
)
from rtserver.providers.base import ChatTurn, GenerationRequest
from rtserver.providers.catalog import Catalog, Model
from rtserver.room.member import Member, Seat
from rtserver.room.memory import Budgeted, MemoryBudget
from rtserver.room.room import Room, RoomLimits, new_id
from rtserver.room.scheduler import LOOP, Scheduler
from rtserver.store.base import Store
from rtserver.turns.budgets import clamp_max_tokens, newest_turns_within
from rtserver.turns.generation import Generation, StopReason
from rtserver.turns.slots import Slots

log = logging.getLogger(__name__)

#: Seconds a client is told to wait when every stream slot of the server is taken: streams
#: take seconds to minutes, and a retry sooner than this would mostly be refused again.
STREAMS_RETRY_S = 5.0


def now_ms() -> int:
    """Wall-clock Unix milliseconds, as messages carry them."""
    return int(time.time() * 1000)


def room_limits(limits: Limits) -> RoomLimits:
    """The part of ``[limits]`` that bounds a room."""
    return RoomLimits(
        participants_per_room=limits.participants_per_room,
        outbox_bytes=limits.outbox_bytes,
        event_log_events=limits.event_log_events,
        event_log_seconds=limits.event_log_seconds,
        event_log_bytes=limits.event_log_bytes,
        history_messages=limits.history_messages,
        welcome_chars=limits.welcome_chars,
        presence_listed=limits.presence_listed,
        presence_interval=limits.presence_interval,
        presence_frames_per_s=limits.presence_frames_per_s,
        token_flush_ms=limits.token_flush_ms,
        prompts_per_minute=limits.prompts_per_minute,
        typing_changes_per_minute=limits.typing_changes_per_minute,
    )


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A prompt about to start a turn, from ``prompt`` or ``interrupt`` with text."""

    prompt_id: str
    text: str
    models: list[str] | None
    params: Params | None


class Turns:
    """The turn controller of one room."""

    def __init__(
        self,
        room_id: str,
        *,
        store: Store,
        catalog: Catalog,
        limits: Limits,
        clock: Callable[[], float] = time.monotonic,
        scheduler: Scheduler = LOOP,
        streams: Slots | None = None,
        memory: MemoryBudget | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._store = store
        self._catalog = catalog
        self._limits = limits
        self._clock = clock
        self.room = Room(
            room_id,
            limits=room_limits(limits),
            models=catalog.infos,
            clock=clock,
            scheduler=scheduler,
            memory=memory,
            metrics=self._metrics,
        )
        # Running generations, counted against the server's streams_max.
        self._streams = streams or Slots(
            capacity=limits.streams_max, what="running streams", retry_after=STREAMS_RETRY_S
        )
        self._generations: dict[str, Generation] = {}
        #: Whose daily budget each running stream spends (the prompt's author's).
        self._spenders: dict[str, DailyBudget] = {}
        self._turn_lock = asyncio.Lock()

    @property
    def id(self) -> str:
        """The room's id."""
        return self.room.id

    async def load(self) -> None:
        """Fill the room's recent messages from the store."""
        self.room.remember(*await self._store.recent(self.id, self._limits.history_messages))

    def budgeted(self) -> tuple[Budgeted, ...]:
        """What the room holds against the server's memory budget."""
        return self.room.budgeted()

    @property
    def idle(self) -> bool:
        """True when nobody is in the room and nothing streams (the room knows both)."""
        return self.room.idle

    @property
    def members(self) -> list[Member]:
        """The room's participants."""
        return self.room.members

    def join(
        self, *, name: str | None, since: Since | None, codec: Codec, seat: Seat | None = None
    ) -> Member:
        """Join the room (see :meth:`Room.join`)."""
        return self.room.join(name=name, since=since, codec=codec, seat=seat)

    def leave(self, member: Member) -> None:
        """Leave the room; the participant's streams go on."""
        self.room.leave(member)

    def tell(self, member: Member, frame: ServerFrame) -> None:
        """Send one participant a frame outside the room's order (see :meth:`Room.tell`)."""
        self.room.tell(member, frame)

    # --- client frames ----------------------------------------------------------------------

    async def handle(self, member: Member, frame: ClientFrame) -> None:
        """Act on one client frame; a PeerError becomes an ``error`` frame to the sender."""
        try:
            await self.act(member, frame)
        except PeerError as exc:
            self.room.tell(member, exc.with_ref(frame.id).to_frame())

    async def act(self, member: Member, frame: ClientFrame) -> None:
        """Act on one client frame; a PeerError is raised to the caller, which answers it.

        The SSE transport answers a frame's error in its HTTP response, not on the stream.
        A fault inside the server (the database failing, say) is logged and answered
        ``internal``, without its text, and the connection carries on.
        """
        try:
            member.grant.check(frame, defaults=self._catalog.defaults)
            await self._dispatch(member, frame)
        except PeerError:
            raise
        except Exception:
            log.exception("room %s: failed to act on a %s frame", self.id, frame.__class__.__name__)
            raise PeerError("internal", "the server failed to act on this frame") from None

    async def _dispatch(self, member: Member, frame: ClientFrame) -> None:
        match frame:
            case Prompt():
                await self._prompt(member, frame)
            case Cancel():
                self._cancel(frame)
            case Interrupt():
                await self._interrupt(member, frame)
            case Typing(active=active):
                if member.typing != active:
                    self._change_typing(member, active)
            case Ping(id=ping_id):
                self.room.tell(member, Pong(id=ping_id))
            case Hello():
                raise PeerError("bad_frame", "hello was already received on this connection")

    async def _prompt(self, member: Member, frame: Prompt) -> None:
        request = TurnRequest(frame.id, frame.text, frame.models, frame.params)
        models = self._check_prompt(request)
        async with self._turn_lock:
            if await self._seen_prompt(frame.id):
                return
            await self._admit(member, request, models)

    async def _interrupt(self, member: Member, frame: Interrupt) -> None:
        request = None
        models: list[Model] = []
        if frame.text is not None:
            request = TurnRequest(frame.id or new_id("i"), frame.text, frame.models, frame.params)
            models = self._check_prompt(request)
        async with self._turn_lock:
            if request is not None:
                # A repeated interrupt does nothing at all: it must not stop the turn
                # that its first delivery started.
                if await self._seen_prompt(request.prompt_id):
                    return
                self._spend_prompt(member)
            await self.stop_all("interrupted")
            if request is not None:
                await self._begin(member, request, models, spend=False)

    def _cancel(self, frame: Cancel) -> None:
        if frame.stream is not None:
            generation = self._generations.get(frame.stream)
            if generation is None or generation.stopping:
                raise PeerError("not_found", f"no running stream {frame.stream!r}")
            generation.stop("cancelled")
        elif frame.model is not None:
            if frame.model not in self._catalog:
                raise PeerError("unknown_model", f"unknown model {frame.model!r}")
            running = [g for g in self._generations.values() if g.model.id == frame.model]
            if not any(not g.stopping for g in running):
                raise PeerError("not_found", f"model {frame.model!r} has no running stream")
            for generation in running:
                generation.stop("cancelled")
        else:
            for generation in list(self._generations.values()):
                generation.stop("cancelled")

    async def stop_all(self, reason: StopReason) -> None:
        """Stop every running stream with ``reason`` and wait until each has ended."""
        running = list(self._generations.values())
        for generation in running:
            generation.stop(reason)
        await asyncio.gather(*(g.wait() for g in running), return_exceptions=True)

    def _change_typing(self, member: Member, active: bool) -> None:
        # Every change goes to everyone: unbounded, one client could fill every outbox.
        per_minute = self._limits.typing_changes_per_minute
        refuse_if_waiting(member.typing_changes.take(), f"{per_minute} typing changes a minute")
        self.room.set_typing(member, active)

    # --- checks -----------------------------------------------------------------------------

    def _check_prompt(self, request: TurnRequest) -> list[Model]:
        text = request.text
        if not text.strip():
            raise PeerError("bad_frame", "prompt text is empty")
        if len(text) > self._limits.max_prompt_chars:
            raise PeerError(
                "too_large",
                f"prompt is {len(text)} characters; the limit is {self._limits.max_prompt_chars}",
            )
        return self._resolve_models(request.models)

    def _spend_prompt(self, member: Member) -> None:
        """Count an accepted prompt against the sender's rate, or refuse it."""
        if member.budget is not None:
            member.budget.check()
        per_minute = self._limits.prompts_per_minute
        refuse_if_waiting(member.prompts.take(), f"{per_minute} prompts a minute")

    def _resolve_models(self, requested: list[str] | None) -> list[Model]:
        # Absent means the defaults; an empty list is a mistake, not a request for them.
        ids = list(self._catalog.defaults) if requested is None else list(dict.fromkeys(requested))
        if not ids:
            raise PeerError("bad_frame", "`models` must name at least one model")
        if len(ids) > self._limits.models_per_prompt:
            raise PeerError(
                "too_large",
                f"a prompt may name at most {self._limits.models_per_prompt} models",
            )
        models = []
        for model_id in ids:
            model = self._catalog.get(model_id)
            if model is None:
                raise PeerError("unknown_model", f"unknown model {model_id[:128]!r}")
            models.append(model)
        return models

    async def _seen_prompt(self, prompt_id: str) -> bool:
        return await self._store.has_prompt(self.id, prompt_id)

    # --- what runs when ---------------------------------------------------------------------

    async def _admit(self, member: Member, request: TurnRequest, models: list[Model]) -> None:
        """Decide what becomes of an accepted prompt: it starts now, or it is refused ``busy``.

        Called with the turn lock held. The one place that decides whether a turn may start.
        """
        if self._generations:
            raise PeerError("busy", "models are still answering: cancel them or send an interrupt")
        await self._begin(member, request, models, spend=True)

    def _streams_ended(self) -> None:
        """The last running stream has ended: what runs next starts from here.

        Nothing waits today (a prompt while streams run is refused in :meth:`_admit`); the
        room tells its directory itself when it is left idle.
        """

    async def _begin(
        self, member: Member, request: TurnRequest, models: list[Model], *, spend: bool
    ) -> None:
        """Take the turn's stream slots, count the prompt (with ``spend``), start the turn.

        Slots come first so that a prompt refused ``busy`` costs the sender nothing; a turn
        that does not start gives them back.
        """
        self._streams.take(len(models))
        started = False
        try:
            if spend:
                self._spend_prompt(member)
            started = await self._start_turn(member, request, models)
        finally:
            if not started:
                self._streams.give_back(len(models))

    async def _start_turn(self, member: Member, request: TurnRequest, models: list[Model]) -> bool:
        ts = now_ms()
        user = HistoryMessage(
            id=new_id("m"),
            role="user",
            text=request.text,
            status="complete",
            ts=ts,
            author=member.identity,
            prompt_id=request.prompt_id,
        )
        replies = [
            HistoryMessage(
                id=new_id("m"),
                role="assistant",
                text="",
                status="streaming",
                ts=ts,
                model=m.id,
                reply_to=user.id,
                stream=new_id("s"),
            )
            for m in models
        ]
        # The user message is durable before anyone hears of it (rule 5).
        if not await self._store.start_turn(self.id, user, request.prompt_id, replies):
            return False
        self.room.remember(user)
        self._metrics.prompts.inc()
        self.room.publish(
            MessageEvent(
                seq=0,
                id=user.id,
                author=member.identity,
                text=user.text,
                prompt_id=request.prompt_id,
                ts=ts,
            )
        )
        with self._metrics.turn(room=self.id, prompt=request.prompt_id):
            for model, reply in zip(models, replies, strict=True):
                if member.budget is not None and reply.stream is not None:
                    self._spenders[reply.stream] = member.budget
                self._start_generation(model, reply, request.params)
        return True

    def _start_generation(self, model: Model, reply: HistoryMessage, params: Params | None) -> None:
        stream = reply.stream or new_id("s")

        async def prepare() -> GenerationRequest:
            lane = await self._store.lane(self.id, model.id, self._limits.context_messages)
            return request_for(model, lane, params, self._limits)

        generation = Generation(
            stream=stream,
            model=model,
            reply=reply,
            prepare=prepare,
            sink=self.room,
            finished=self._reply_finished,
            store=self._store,
            checkpoint_interval=self._limits.checkpoint_interval,
            clock=self._clock,
            meter=self._metrics.stream(model.id, stream=stream, room=self.id),
        )
        self._generations[stream] = generation
        self.room.stream_started(generation, reply)
        self.room.publish(
            StreamStart(
                seq=0,
                stream=stream,
                model=model.id,
                message=reply.id,
                reply_to=reply.reply_to or "",
                ts=reply.ts,
            )
        )
        generation.start()

    def _reply_finished(self, generation: Generation, message: HistoryMessage) -> None:
        """Called by a generation once its stream_end is published."""
        if self._generations.pop(generation.stream, None) is not None:
            self._streams.give_back()
        budget = self._spenders.pop(generation.stream, None)
        if budget is not None and message.usage is not None:
            budget.spend(message.usage.output_tokens)
        self.room.stream_ended(generation.stream, message)
        if not self._generations:
            self._streams_ended()

    # --- shutdown ---------------------------------------------------------------------------

    async def close(self) -> None:
        """End running streams as interrupted, then close every connection with 1001."""
        await self.stop_all("interrupted")
        self.room.close()


def request_for(
    model: Model, lane: list[HistoryMessage], params: Params | None, limits: Limits
) -> GenerationRequest:
    """What a model is asked: its lane within ``context_chars``, and the prompt's own params.

    The model's configured ``params`` are its provider's defaults; the provider applies them.
    A prompt's ``max_tokens`` is held to the model's configured one (or ``[limits] max_tokens``).
    """
    turns = [ChatTurn(role=m.role, content=m.text) for m in lane]
    return GenerationRequest(
        messages=tuple(newest_turns_within(turns, limits.context_chars)),
        temperature=params.temperature if params else None,
        max_tokens=clamp_max_tokens(
            params.max_tokens if params else None, model.spec.params, server_cap=limits.max_tokens
        ),
    )
