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
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from rtserver.auth.limits import DailyBudget
from rtserver.auth.ratelimit import refuse_if_waiting
from rtserver.config import Limits
from rtserver.errors import PeerError
from rtserver.ops.metrics import Metrics
from rtserver.protocol.codec import Codec
from rtserver.protocol.frames import (
    Approve,
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
    Regenerate,
    ServerFrame,
    Since,
    StreamStart,
    Typing,
    Unqueued,
    UnqueuedReason,
    Withdraw,
)
from rtserver.providers.base import ChatTurn, GenerationRequest
from rtserver.providers.catalog import Catalog, Model
from rtserver.room.member import Member, Seat
from rtserver.room.memory import Budgeted, MemoryBudget
from rtserver.room.room import Room, RoomLimits, new_id
from rtserver.room.scheduler import LOOP, Scheduler
from rtserver.store.base import PromptRequest, Store
from rtserver.tools.toolbox import Toolbox, ToolSet
from rtserver.turns.approvals import Approvals
from rtserver.turns.budgets import clamp_max_tokens, newest_turns_within
from rtserver.turns.generation import Generation, StopReason
from rtserver.turns.queue import TurnQueue, Waiting, WaitingPrompt, WaitingRegenerate
from rtserver.turns.routed import Retarget, RoutedStream
from rtserver.turns.routing import Routing
from rtserver.turns.slots import Slots
from rtserver.turns.tools import ToolAccess, ToolLimits

log = logging.getLogger(__name__)

#: Seconds a client is told to wait when every stream slot of the server is taken: streams
#: take seconds to minutes, and a retry sooner than this would mostly be refused again.
STREAMS_RETRY_S = 5.0
#: Seconds a client is told to wait when its room's queue is full: a turn ending frees a place.
QUEUE_RETRY_S = 5.0


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

    #: The room it holds: shared by several nodes in :class:`~rtserver.turns.shared.SharedTurns`.
    room_class: type[Room] = Room

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
        toolbox: Toolbox | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._toolbox = toolbox
        #: Tool calls of this room's streams that wait for a member's ``approve``.
        self._approvals = Approvals()
        self._store = store
        self._catalog = catalog
        self._limits = limits
        self._clock = clock
        self.room = self.room_class(
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
        self._routing = Routing(catalog)
        #: Whose daily budget each running stream spends (the prompt's author's).
        self._spenders: dict[str, DailyBudget] = {}
        self._turn_lock = asyncio.Lock()
        #: What waits for the running streams to end: stored prompts and regenerates.
        self._queue = TurnQueue(capacity=limits.queue_max, retry_after=QUEUE_RETRY_S)
        #: Starts what waits once the streams have ended (see _run_next_soon).
        self._next: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def id(self) -> str:
        """The room's id."""
        return self.room.id

    async def load(self) -> None:
        """Fill the room's recent messages from the store; queued prompts wait again."""
        self.room.remember(*await self._store.recent(self.id, self._limits.history_messages))
        await self._restore_queue()

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
                await self._cancel(frame)
            case Interrupt():
                await self._interrupt(member, frame)
            case Typing(active=active):
                if member.typing != active:
                    self._change_typing(member, active)
            case Ping(id=ping_id):
                self.room.tell(member, Pong(id=ping_id))
            case Approve(call=call, allow=allow):
                # A viewer's approve was refused by the grant check already.
                self._approvals.answer(call, allow=allow, by=member.identity)
            case Withdraw():
                await self._withdraw(member, frame)
            case Regenerate():
                await self._regenerate(member, frame)
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

    async def _cancel(self, frame: Cancel) -> None:
        if frame.stream is None and frame.model is None:
            await self._cancel_all()
            return
        if frame.stream is not None:
            generation = self._generations.get(frame.stream)
            if generation is None or generation.stopping:
                raise PeerError("not_found", f"no running stream {frame.stream!r}")
            generation.stop("cancelled")
        elif frame.model is not None:
            if frame.model not in self._catalog:
                raise PeerError("unknown_model", f"unknown model {frame.model!r}")
            # A router's id names its streams, whichever model answers them.
            running = [
                g for g in self._generations.values() if frame.model in (g.model.id, g.routed_from)
            ]
            if not any(not g.stopping for g in running):
                raise PeerError("not_found", f"model {frame.model!r} has no running stream")
            for generation in running:
                generation.stop("cancelled")

    async def _cancel_all(self) -> None:
        """End every running stream and clear the queue, visibly to everyone.

        The queue goes first, under the turn lock: nothing of it may start as the streams end.
        """
        async with self._turn_lock:
            cleared = self._queue.clear()
            for generation in list(self._generations.values()):
                generation.stop("cancelled")
            await self._unqueue(TurnQueue.prompt_ids(cleared), "cleared")

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
        if len(ids) > self._limits.streams_per_room:
            raise PeerError(
                "too_large",
                f"a room runs at most {self._limits.streams_per_room} streams at once;"
                f" this prompt names {len(ids)} models",
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
        """Decide what becomes of an accepted prompt: it starts now, or it waits its turn.

        Called with the turn lock held. The one place that decides whether a turn may start:
        while streams run, or anything waits before it, the prompt joins the queue.
        """
        if self._generations or len(self._queue):
            await self._enqueue(member, request, models)
            return
        await self._begin(member, request, models, spend=True)

    def _streams_ended(self) -> None:
        """The last running stream has ended: what waits starts from here."""
        self._run_next_soon()

    # --- the queue ----------------------------------------------------------------------------

    async def _enqueue(self, member: Member, request: TurnRequest, models: list[Model]) -> None:
        """Store the prompt as queued and tell everyone; it runs when the streams before it end."""
        self._queue.check_room()
        self._spend_prompt(member)
        user = HistoryMessage(
            id=new_id("m"),
            role="user",
            text=request.text,
            status="complete",
            ts=now_ms(),
            author=member.identity,
            prompt_id=request.prompt_id,
            queued=True,
        )
        asked = PromptRequest(models=[m.id for m in models], params=request.params)
        if not await self._store.enqueue(self.id, user, request.prompt_id, asked):
            return
        self._queue.push(
            WaitingPrompt(
                message=user.id,
                author=member.id,
                models=tuple(asked.models),
                params=request.params,
                prompt_id=request.prompt_id,
                text=request.text,
                budget=member.budget,
            )
        )
        self._announce(member, user, request.prompt_id, queued=True)

    async def _withdraw(self, member: Member, frame: Withdraw) -> None:
        async with self._turn_lock:
            entry = self._queue.own(frame.message, member.id)
            await self._unqueue([entry.message], "withdrawn")
            self._queue.remove(entry)

    async def _unqueue(self, message_ids: list[str], reason: UnqueuedReason) -> None:
        """Store queued prompts as withdrawn (they never run) and tell everyone."""
        if not message_ids:
            return
        done = await self._store.withdraw(self.id, message_ids)
        for message_id in done:
            self.room.unqueued(message_id, withdrawn=True)
        if done:
            self.room.publish(Unqueued(seq=0, messages=done, reason=reason))

    async def _restore_queue(self) -> None:
        """Queued prompts stored before a restart wait again, in order; one that can no longer
        run (its model is gone) is withdrawn, for everyone to see."""
        waiting: list[Waiting] = []
        gone: list[str] = []
        for queued in await self._store.queued(self.id):
            message, models = queued.message, queued.request.models
            if message.author is None or not all(m in self._catalog for m in models):
                gone.append(message.id)
                continue
            waiting.append(
                WaitingPrompt(
                    message=message.id,
                    author=message.author.id,
                    models=tuple(models),
                    params=queued.request.params,
                    prompt_id=message.prompt_id or "",
                    text=message.text,
                )
            )
        await self._unqueue(gone, "withdrawn")
        self._queue.restore(waiting)
        if waiting:
            self._run_next_soon()

    def _run_next_soon(self) -> None:
        if self._closed or (self._next is not None and not self._next.done()):
            return
        self._next = asyncio.get_running_loop().create_task(self._run_next())

    async def _run_next(self) -> None:
        """Start what waits, in order, once nothing runs; one turn at a time."""
        async with self._turn_lock:
            while not self._generations and not self._closed:
                entry = self._queue.pop()
                if entry is None:
                    return
                try:
                    await self._start_waiting(entry)
                except PeerError as exc:
                    if exc.code == "busy":
                        # The server runs all the streams it may, or cannot store: it waits on.
                        self._wait_and_retry(entry, exc.retry_after or STREAMS_RETRY_S)
                        return
                    # What it referred to is gone (retention deleted the prompt, say).
                    log.warning("room %s: a queued entry cannot start: %s", self.id, exc.message)
                except Exception:
                    log.exception("room %s: failed to start a queued entry", self.id)
                    self._wait_and_retry(entry, STREAMS_RETRY_S)
                    return

    def _wait_and_retry(self, entry: Waiting, delay: float) -> None:
        """Put ``entry`` back at the head of the queue and try again in ``delay`` seconds."""
        self._queue.restore([entry])
        self._retry = asyncio.get_running_loop().call_later(delay, self._run_next_soon)

    async def _start_waiting(self, entry: Waiting) -> None:
        if isinstance(entry, WaitingRegenerate):
            model = self._catalog.get(entry.model)
            if model is not None:
                await self._start_regenerate(entry, model)
            return
        models = [self._catalog.get(m) for m in entry.models]
        if any(m is None for m in models):
            await self._unqueue([entry.message], "withdrawn")
            return
        resolved = [m for m in models if m is not None]
        self._streams.take(len(resolved))
        started = False
        try:
            started = await self._start_queued(entry, resolved)
        finally:
            if not started:
                self._streams.give_back(len(resolved))

    async def _start_queued(self, entry: WaitingPrompt, models: list[Model]) -> bool:
        user = HistoryMessage(
            id=entry.message, role="user", text=entry.text, status="complete", ts=now_ms()
        )
        replies = [self._placeholder(m, user, entry.text) for m in models]
        if not await self._store.start_queued(self.id, entry.message, replies):
            return False
        self.room.unqueued(entry.message, withdrawn=False)
        self.room.publish(Unqueued(seq=0, messages=[entry.message], reason="started"))
        with self._metrics.turn(room=self.id, prompt=entry.prompt_id):
            for model, reply in zip(models, replies, strict=True):
                if entry.budget is not None and reply.stream is not None:
                    self._spenders[reply.stream] = entry.budget
                self._start_generation(model, reply, entry.params, entry.text)
        return True

    # --- regenerate ---------------------------------------------------------------------------

    async def _regenerate(self, member: Member, frame: Regenerate) -> None:
        model = self._catalog.get(frame.model)
        if model is None:
            raise PeerError("unknown_model", f"unknown model {frame.model[:128]!r}")
        async with self._turn_lock:
            await self._regenerable(frame.reply_to, model)
            entry = WaitingRegenerate(
                reply_to=frame.reply_to, model=model.id, author=member.id, budget=member.budget
            )
            if self._generations or len(self._queue):
                self._queue.check_room()
                self._spend_prompt(member)
                self._queue.push(entry)
                return
            self._streams.take()
            try:
                self._spend_prompt(member)
            except PeerError:
                self._streams.give_back()
                raise
            await self._start_regenerate(entry, model, slot_taken=True)

    async def _regenerable(
        self, reply_to: str, model: Model
    ) -> tuple[HistoryMessage, HistoryMessage]:
        """The prompt and the reply a regenerate of ``model``'s answer to ``reply_to`` replaces.

        Raises ``not_found`` when there is no such prompt or reply.
        """
        prompt = await self._store.message(self.id, reply_to)
        if prompt is None or prompt.role != "user" or prompt.queued or prompt.withdrawn:
            raise PeerError("not_found", f"no prompt {reply_to[:128]!r} that ran in this room")
        old = await self._store.newest_reply(self.id, reply_to, model.id)
        if old is None:
            raise PeerError("not_found", f"model {model.id!r} did not answer {reply_to[:128]!r}")
        return prompt, old

    async def _start_regenerate(
        self, entry: WaitingRegenerate, model: Model, *, slot_taken: bool = False
    ) -> None:
        """Run ``model``'s reply to ``entry.reply_to`` again, replacing its newest one."""
        if not slot_taken:
            self._streams.take()
        try:
            prompt, old = await self._regenerable(entry.reply_to, model)
            reply = msgspec.structs.replace(
                self._placeholder(model, prompt, prompt.text), ts=now_ms(), replaces=old.id
            )
            await self._store.add_replies(self.id, [reply])
        except BaseException:
            self._streams.give_back()
            raise
        if entry.budget is not None and reply.stream is not None:
            self._spenders[reply.stream] = entry.budget
        self._start_generation(model, reply, None, prompt.text, upto=entry.reply_to)

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
        replies = [self._placeholder(m, user, request.text) for m in models]
        # The user message is durable before anyone hears of it (rule 5).
        if not await self._store.start_turn(self.id, user, request.prompt_id, replies):
            return False
        self._announce(member, user, request.prompt_id, queued=False)
        with self._metrics.turn(room=self.id, prompt=request.prompt_id):
            for model, reply in zip(models, replies, strict=True):
                if member.budget is not None and reply.stream is not None:
                    self._spenders[reply.stream] = member.budget
                self._start_generation(model, reply, request.params, request.text)
        return True

    def _placeholder(self, model: Model, user: HistoryMessage, text: str) -> HistoryMessage:
        """The reply of ``model`` as stored before it streams; a router's names its first pick."""
        routed = self._routing.is_router(model.id)
        return HistoryMessage(
            id=new_id("m"),
            role="assistant",
            text="",
            status="streaming",
            ts=user.ts,
            model=self._routing.first_choice(model.id, text).model if routed else model.id,
            reply_to=user.id,
            stream=new_id("s"),
            routed_from=model.id if routed else None,
        )

    def _announce(
        self, member: Member, user: HistoryMessage, prompt_id: str, *, queued: bool
    ) -> None:
        """Keep a stored user message and tell the room of it, queued or starting now."""
        self.room.remember(user)
        self._metrics.prompts.inc()
        self.room.publish(
            MessageEvent(
                seq=0,
                id=user.id,
                author=member.identity,
                text=user.text,
                prompt_id=prompt_id,
                ts=user.ts,
                queued=queued,
            )
        )

    def _start_generation(
        self,
        model: Model,
        reply: HistoryMessage,
        params: Params | None,
        text: str,
        *,
        upto: str | None = None,
    ) -> None:
        """Start ``reply``'s stream; ``upto`` (a regenerate) ends its lane at that prompt."""
        stream = reply.stream or new_id("s")
        if self._routing.is_router(model.id):
            self._start_routed(model, reply, params, text)
            return

        async def prepare() -> GenerationRequest:
            lane = await self._store.lane(
                self.id, model.id, self._limits.context_messages, upto=upto
            )
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
            tools=self._tool_access(model),
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
                replaces=reply.replaces,
            )
        )
        generation.start()

    def _start_routed(
        self, router: Model, reply: HistoryMessage, params: Params | None, text: str
    ) -> None:
        """A router's stream: its ``stream_start`` waits for the choice (see RoutedStream)."""
        stream = reply.stream or new_id("s")
        limits = self._limits

        def announce(routed: RoutedStream, stopped: bool) -> None:
            chosen = msgspec.structs.replace(reply, model=routed.model.id)
            self.room.stream_started(generation, chosen)
            self.room.publish(
                StreamStart(
                    seq=0,
                    stream=stream,
                    model=routed.model.id,
                    message=reply.id,
                    reply_to=reply.reply_to or "",
                    ts=reply.ts,
                    routed_from=router.id,
                    route_reason=routed.reason,
                )
            )

        routed = RoutedStream(
            router_id=router.id,
            text=text,
            stream=stream,
            message_id=reply.id,
            routing=self._routing,
            publish=self.room.publish,
            store=self._store,
            metrics=self._metrics,
            retarget=retargeted(params, limits),
            announce=announce,
        )

        async def prepare() -> GenerationRequest:
            # The router's lane, for whichever model answers it.
            lane = await self._store.lane(self.id, router.id, limits.context_messages)
            return request_for(routed.model, lane, params, limits)

        generation = Generation(
            stream=stream,
            model=router,
            reply=reply,
            prepare=prepare,
            sink=self.room,
            finished=self._reply_finished,
            store=self._store,
            checkpoint_interval=limits.checkpoint_interval,
            clock=self._clock,
            meter=self._metrics.stream(router.id, stream=stream, room=self.id),
            routed=routed,
        )
        self._generations[stream] = generation
        generation.start()

    def _tool_access(self, model: Model) -> ToolAccess | None:
        """The tools ``model`` may call, for one reply; None when it has none."""
        toolbox, sources = self._toolbox, model.spec.tools
        if toolbox is None or not sources:
            return None
        limits = self._limits
        steps = model.spec.max_tool_steps

        def toolset() -> ToolSet:
            return toolbox.for_model(sources)

        return ToolAccess(
            toolset=toolset,
            approvals=self._approvals,
            limits=ToolLimits(
                max_steps=limits.max_tool_steps if steps is None else steps,
                approval_s=limits.tool_approval_s,
                result_chars=limits.tool_result_chars,
                calls_per_step=limits.tool_calls_per_step,
            ),
        )

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

    def let_go(self) -> None:
        """The directory forgets this room (idle): nothing to let go of on one node."""

    async def close(self) -> None:
        """End running streams as interrupted, then close every connection with 1001.

        What waits in the queue stays stored as queued, and runs when the room opens again.
        """
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        if self._next is not None:
            self._next.cancel()
        await self.stop_all("interrupted")
        self.room.close()


def request_for(
    model: Model, lane: list[HistoryMessage], params: Params | None, limits: Limits
) -> GenerationRequest:
    """What a model is asked: its lane within ``context_chars``, and the prompt's own params.

    The model's configured ``params`` are its provider's defaults; the provider applies them.
    A prompt's ``max_tokens`` is held to the model's configured one (or ``[limits] max_tokens``).
    """
    # Answers only: a reply's reasoning is kept for people, never sent back to a model.
    turns = [ChatTurn(role=m.role, content=m.text) for m in lane]
    return GenerationRequest(
        messages=tuple(newest_turns_within(turns, limits.context_chars)),
        temperature=params.temperature if params else None,
        max_tokens=clamp_max_tokens(
            params.max_tokens if params else None, model.spec.params, server_cap=limits.max_tokens
        ),
        reasoning=bool(params and params.reasoning),
    )


def retargeted(params: Params | None, limits: Limits) -> Retarget:
    """How a routed stream's request is made over for the next candidate: its own cap."""

    def retarget(model: Model, request: GenerationRequest) -> GenerationRequest:
        cap = clamp_max_tokens(
            params.max_tokens if params else None, model.spec.params, server_cap=limits.max_tokens
        )
        return dataclasses.replace(request, max_tokens=cap)

    return retarget
