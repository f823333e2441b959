"""Room state: participants, turns, running generations and the event log.

Everything here runs on the event loop without locks on the token path: publishing an event,
joining (snapshot or replay) and leaving are plain synchronous code, so no event can slip
between a joiner's snapshot and its first live event.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from rtserver.auth.limits import DailyBudget
from rtserver.auth.ratelimit import TokenBucket, refuse_if_waiting
from rtserver.config import Limits
from rtserver.errors import PeerError
from rtserver.ops.metrics import Metrics, ResumeKind
from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.codec import Codec, Outgoing
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
    RoomEvent,
    RunningStream,
    ServerFrame,
    Since,
    StreamStart,
    TokenEvent,
    Typing,
    Welcome,
)
from rtserver.providers.base import ChatTurn, GenerationRequest
from rtserver.providers.catalog import Catalog, Model
from rtserver.room.coalesce import TokenCoalescer
from rtserver.room.eventlog import EventLog
from rtserver.room.member import Member, Seat
from rtserver.room.memory import Budgeted, MemoryBudget
from rtserver.room.outbox import Outbox
from rtserver.room.presence import PresenceBoard
from rtserver.room.recent import RecentMessages
from rtserver.store.base import Store
from rtserver.turns.budgets import clamp_max_tokens, newest_turns_within, newest_within
from rtserver.turns.generation import Generation, StopReason
from rtserver.turns.slots import Slots

log = logging.getLogger(__name__)


#: Seconds a client is told to wait when every stream slot of the server is taken: streams
#: take seconds to minutes, and a retry sooner than this would mostly be refused again.
STREAMS_RETRY_S = 5.0
#: Seconds a client is told to wait when a room is full: someone leaving frees a place.
ROOM_FULL_RETRY_S = 10.0


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(12)}"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A prompt about to start a turn, from ``prompt`` or ``interrupt`` with text."""

    prompt_id: str
    text: str
    models: list[str] | None
    params: Params | None


class Room:
    """One shared room."""

    def __init__(
        self,
        room_id: str,
        *,
        store: Store,
        catalog: Catalog,
        limits: Limits,
        clock: Callable[[], float] = time.monotonic,
        streams: Slots | None = None,
        memory: MemoryBudget | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.id = room_id
        self._metrics = metrics or Metrics()
        self._store = store
        self._catalog = catalog
        self._limits = limits
        self._clock = clock
        self.log = EventLog(
            max_events=limits.event_log_events,
            max_age_s=limits.event_log_seconds,
            clock=clock,
            max_bytes=limits.event_log_bytes,
            budget=memory,
        )
        # Running generations, counted against the server's streams_max.
        self._streams = streams or Slots(
            capacity=limits.streams_max, what="running streams", retry_after=STREAMS_RETRY_S
        )
        self._members: dict[str, Member] = {}
        self._history = RecentMessages(
            max_messages=limits.history_messages, max_chars=limits.welcome_chars, budget=memory
        )
        self._presence = PresenceBoard(listed_max=limits.presence_listed)
        self._presence_flush: asyncio.TimerHandle | None = None
        #: Connections per participant id: one person (token subject) may have several tabs.
        self._sessions_of: dict[str, int] = {}
        self._generations: dict[str, Generation] = {}
        #: Whose daily budget each running stream spends (the prompt's author's).
        self._spenders: dict[str, DailyBudget] = {}
        self._turn_lock = asyncio.Lock()
        self._tokens: TokenCoalescer | None = None
        if limits.token_flush_ms > 0:
            self._tokens = TokenCoalescer(
                window_s=limits.token_flush_ms / 1000, emit=self._publish_tokens
            )
        self.on_idle: Callable[[Room], None] | None = None

    async def load(self) -> None:
        """Fill the in-memory history from the store."""
        self._history.extend(await self._store.recent(self.id, self._limits.history_messages))

    def budgeted(self) -> tuple[Budgeted, ...]:
        """What this room holds against the server's memory budget: its log and its history."""
        return (self.log, self._history)

    @property
    def idle(self) -> bool:
        return not self._members and not self._generations

    @property
    def members(self) -> list[Member]:
        return list(self._members.values())

    # --- joining and leaving ----------------------------------------------------------------

    def join(
        self, *, name: str | None, since: Since | None, codec: Codec, seat: Seat | None = None
    ) -> Member:
        """Add a participant: queue its welcome, then any replayed events, then go live.

        Without a ``seat`` it is a new participant of its own, with limits of its own.
        """
        if len(self._members) >= self._limits.participants_per_room:
            raise PeerError(
                "busy",
                f"room {self.id} is full ({self._limits.participants_per_room} participants)",
                retry_after=ROOM_FULL_RETRY_S,
            )
        member_id = (seat.member_id if seat else None) or new_id("p")
        member = Member(
            id=member_id,
            name=(name or "").strip() or f"guest-{member_id[-4:]}",
            session=new_id("sess"),
            codec=codec,
            outbox=Outbox(max_bytes=self._limits.outbox_bytes),
            prompts=TokenBucket(
                capacity=self._limits.prompts_per_minute, per_seconds=60.0, clock=self._clock
            ),
            typing_changes=TokenBucket(
                capacity=self._limits.typing_changes_per_minute,
                per_seconds=60.0,
                clock=self._clock,
            ),
        )
        if seat is not None:
            member.owner, member.grant, member.budget = seat.owner, seat.grant, seat.quota.budget
            member.prompts, member.typing_changes = seat.quota.prompts, seat.quota.typing_changes
        # A snapshot and a replay stand at the log's head: what is gathered goes there first.
        self._flush_tokens()
        replay = self._replay_for(since, codec)
        # By session: one person (one token subject) may join from several tabs at once, and
        # is listed once in presence, from the first of them until the last has gone.
        self._members[member.session] = member
        self._sessions_of[member.id] = self._sessions_of.get(member.id, 0) + 1
        if self._sessions_of[member.id] == 1:
            self._presence.join(member.presence())
        # The welcome is named (SSE ``id:``) by the seq the client stands at once it has it:
        # the resume point during a replay, so that a reconnect in the middle of one misses
        # nothing. WebSocket codecs ignore the name.
        at = since.seq if since is not None and replay is not None else self.log.head
        welcome = self._welcome(member, resumed=replay is not None)
        member.preload(Outgoing(welcome, self.log.event_id(at)))
        for event in replay or ():
            member.preload(event)
        self._presence_changed()
        resume: ResumeKind | None = None
        if since is not None:
            resume = "snapshot" if replay is None else "replay"
        self._metrics.joined(resume)
        log.info("joined", extra={"room": self.id, "participant": member.id, "resume": resume})
        return member

    def _replay_for(self, since: Since | None, codec: Codec) -> list[Outgoing] | None:
        if since is None:
            return None
        events = self.log.since(since.epoch, since.seq)
        if events is None:
            return None
        # A long replay costs the client more than a snapshot of the same state: give it
        # a snapshot instead.
        size = sum(len(e.data(codec)) for e in events)
        return events if size <= self._limits.outbox_bytes // 2 else None

    def _welcome(self, member: Member, *, resumed: bool) -> Welcome:
        return Welcome(
            session=member.session,
            participant=member.identity,
            room=self.id,
            epoch=self.log.epoch,
            seq=self.log.head,
            resumed=resumed,
            models=[i for i in self._catalog.infos if member.grant.allows_model(i.id)],
            participants=self._presence.listed(),
            messages=[] if resumed else self._snapshot_messages(),
            streams=[] if resumed else self._snapshot_streams(),
            participant_count=self._presence.count,
        )

    def _snapshot_messages(self) -> list[HistoryMessage]:
        live = {g.reply.id: g for g in self._generations.values()}
        messages = [
            msgspec.structs.replace(m, text=live[m.id].text) if m.id in live else m
            for m in self._history
        ]
        return newest_within(messages, self._limits.welcome_chars, keep_newest=False)

    def _snapshot_streams(self) -> list[RunningStream]:
        return [
            RunningStream(
                stream=g.stream,
                model=g.model.id,
                message=g.reply.id,
                reply_to=g.reply.reply_to or "",
                text=g.text,
            )
            for g in self._generations.values()
        ]

    def leave(self, member: Member) -> None:
        """Remove a participant; its streams and everyone else's go on."""
        if self._members.pop(member.session, None) is None:
            return
        self._metrics.left()
        remaining = self._sessions_of.pop(member.id, 1) - 1
        if remaining:
            self._sessions_of[member.id] = remaining
        else:
            self._presence.leave(member.id)
        self._presence_changed()
        if self.idle and self.on_idle is not None:
            self.on_idle(self)

    # --- publishing -------------------------------------------------------------------------

    def next_seq(self) -> int:
        return self.log.next_seq()

    def publish(self, event: RoomEvent) -> None:
        """Log a room event and queue it for every participant, encoded once per codec.

        With ``token_flush_ms``, a token is gathered instead and numbered when its frame goes
        out; any other event first sends what is gathered, and then takes the seq after it
        (events are made with :meth:`next_seq` just before they are published).
        """
        tokens = self._tokens
        if tokens is not None:
            if isinstance(event, TokenEvent):
                tokens.add(event)
                return
            if tokens.pending:
                tokens.flush()
                event = msgspec.structs.replace(event, seq=self.log.next_seq())
        self._log_and_fan_out(event)

    def _publish_tokens(self, stream: str, parts: list[str], emitted_us: int | None) -> None:
        event = TokenEvent(
            seq=self.log.next_seq(),
            stream=stream,
            text="".join(parts),
            emitted_us=emitted_us,
            tokens=len(parts) if len(parts) > 1 else None,
        )
        self._log_and_fan_out(event)

    def _flush_tokens(self) -> None:
        if self._tokens is not None:
            self._tokens.flush()

    def _log_and_fan_out(self, event: RoomEvent) -> None:
        out = Outgoing(event, self.log.event_id(event.seq))
        self.log.append(out)
        self._fan_out(out)

    def _fan_out(self, out: Outgoing) -> None:
        slow = [m for m in self._members.values() if not m.send(out)]
        for member in slow:
            self._drop_slow(member)

    def _drop_slow(self, member: Member) -> None:
        # Leaving only records the change: presence goes out at the next flush, so a drop
        # never fans out, and one slow participant cannot drop the next from inside a drop.
        if not member.outbox.closed:  # else its connection is already on its way out
            log.info(
                "room %s: participant %s is too slow, closing it",
                self.id,
                member.id,
                extra={"room": self.id, "participant": member.id},
            )
            self._metrics.slow_consumer_drops.inc()
            member.outbox.close(CloseCode.SLOW_CONSUMER, "slow consumer: reconnect and resume")
        self.leave(member)

    def tell(self, member: Member, frame: ServerFrame) -> None:
        """Queue a non-room frame (error, pong) for one participant.

        It counts toward the outbox bound like any frame: a client that sends frames but
        reads none of the answers is a slow consumer too, not a reason to queue without end.
        """
        if not member.send(Outgoing(frame)):
            self._drop_slow(member)

    def _presence_changed(self) -> None:
        """Send the change with the others of this presence interval, in one frame."""
        if self._presence_flush is None:
            # Each flush is a write to every participant: in a big room, fewer and larger.
            limits = self._limits
            interval = max(
                limits.presence_interval, len(self._members) / limits.presence_frames_per_s
            )
            loop = asyncio.get_running_loop()
            self._presence_flush = loop.call_later(interval, self._flush_presence)

    def _flush_presence(self) -> None:
        self._presence_flush = None
        diff = self._presence.flush()
        if diff is not None:
            self._fan_out(Outgoing(diff))

    def reply_finished(self, generation: Generation, message: HistoryMessage) -> None:
        """Called by a generation once its stream_end is published."""
        if self._generations.pop(generation.stream, None) is not None:
            self._streams.give_back()
        if self._tokens is not None:
            self._tokens.forget(generation.stream)
        budget = self._spenders.pop(generation.stream, None)
        if budget is not None and message.usage is not None:
            budget.spend(message.usage.output_tokens)
        self._history.replace(message)
        if self.idle and self.on_idle is not None:
            self.on_idle(self)

    # --- client frames ----------------------------------------------------------------------

    async def handle(self, member: Member, frame: ClientFrame) -> None:
        """Act on one client frame; a PeerError becomes an ``error`` frame to the sender."""
        try:
            await self.act(member, frame)
        except PeerError as exc:
            self.tell(member, exc.with_ref(frame.id).to_frame())

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
                self.tell(member, Pong(id=ping_id))
            case Hello():
                raise PeerError("bad_frame", "hello was already received on this connection")

    async def _prompt(self, member: Member, frame: Prompt) -> None:
        request = TurnRequest(frame.id, frame.text, frame.models, frame.params)
        models = self._check_prompt(request)
        async with self._turn_lock:
            if await self._seen_prompt(frame.id):
                return
            if self._generations:
                raise PeerError(
                    "busy", "models are still answering: cancel them or send an interrupt"
                )
            await self._begin(member, request, models, spend=True)

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

    # --- turns ------------------------------------------------------------------------------

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

    def _change_typing(self, member: Member, active: bool) -> None:
        # Every change goes to everyone: unbounded, one client could fill every outbox.
        per_minute = self._limits.typing_changes_per_minute
        refuse_if_waiting(member.typing_changes.take(), f"{per_minute} typing changes a minute")
        member.typing = active
        self._presence.update(member.presence())
        self._presence_changed()

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
        self._history.append(user)
        self._metrics.prompts.inc()
        self.publish(
            MessageEvent(
                seq=self.next_seq(),
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
            return _request_for(model, lane, params, self._limits)

        generation = Generation(
            stream=stream,
            model=model,
            reply=reply,
            prepare=prepare,
            sink=self,
            store=self._store,
            checkpoint_interval=self._limits.checkpoint_interval,
            clock=self._clock,
            meter=self._metrics.stream(model.id, stream=stream, room=self.id),
        )
        self._generations[stream] = generation
        self._history.append(reply)
        self.publish(
            StreamStart(
                seq=self.next_seq(),
                stream=stream,
                model=model.id,
                message=reply.id,
                reply_to=reply.reply_to or "",
                ts=reply.ts,
            )
        )
        generation.start()

    # --- shutdown ---------------------------------------------------------------------------

    async def close(self) -> None:
        """End running streams as interrupted, then close every connection with 1001."""
        await self.stop_all("interrupted")
        if self._tokens is not None:
            self._tokens.close()
        if self._presence_flush is not None:
            self._presence_flush.cancel()
        for member in list(self._members.values()):
            member.outbox.close(CloseCode.GOING_AWAY, "server shutting down", flush=True)
        self._members.clear()


def _request_for(
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
