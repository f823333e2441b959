"""A room: its participants, its event log, presence, fan-out, snapshots and replay.

Synchronous and free of I/O: no sockets, no store, no event loop of its own (its two timers,
presence flushes and token coalescing, come from an injected :class:`Scheduler`). Publishing an
event, joining (snapshot or replay) and leaving are plain synchronous code, so no event can slip
between a joiner's snapshot and its first live event. The turns layer (:mod:`rtserver.turns`)
decides what is published; transports read what each member's outbox is given.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from rtserver.auth.ratelimit import TokenBucket
from rtserver.errors import PeerError
from rtserver.ops.metrics import Metrics, ResumeKind
from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.codec import Codec, Outgoing
from rtserver.protocol.frames import (
    HistoryMessage,
    ModelInfo,
    ReasoningEvent,
    RoomEvent,
    RunningStream,
    ServerFrame,
    Since,
    TokenEvent,
    ToolCallRecord,
    Welcome,
)
from rtserver.room.coalesce import TokenCoalescer
from rtserver.room.cuts import newest_within
from rtserver.room.eventlog import EventLog
from rtserver.room.member import Member, Seat
from rtserver.room.memory import Budgeted, MemoryBudget
from rtserver.room.outbox import Outbox
from rtserver.room.presence import PresenceBoard, Roster
from rtserver.room.recent import RecentMessages
from rtserver.room.scheduler import LOOP, Scheduler, Timer
from rtserver.room.spread import Spreader

log = logging.getLogger(__name__)

#: Seconds a client is told to wait when a room is full: someone leaving frees a place.
ROOM_FULL_RETRY_S = 10.0


def new_id(prefix: str) -> str:
    """A fresh random id, ``<prefix>_<16 url-safe characters>``."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


@dataclass(frozen=True, slots=True)
class RoomLimits:
    """What bounds one room; the server's come from ``[limits]`` (see ``rtserver.config``)."""

    participants_per_room: int = 10_000
    outbox_bytes: int = 4 << 20
    event_log_events: int = 20_000
    event_log_seconds: float = 600.0
    event_log_bytes: int = 8 << 20
    history_messages: int = 50
    welcome_chars: int = 200_000
    presence_listed: int = 100
    presence_interval: float = 0.1
    presence_frames_per_s: int = 5_000
    #: 0 sends every token as its own frame.
    token_flush_ms: float = 10.0
    prompts_per_minute: int = 60
    typing_changes_per_minute: int = 60


class LiveReply(Protocol):
    """What the room needs to know of a reply being streamed, for joiners' snapshots."""

    @property
    def stream(self) -> str: ...

    @property
    def model_id(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    @property
    def reply_to(self) -> str: ...

    @property
    def routed_from(self) -> str | None:
        """The router whose lane the reply is in, if routed (its model may change)."""
        ...

    @property
    def text(self) -> str:
        """The reply so far."""
        ...

    @property
    def reasoning(self) -> str:
        """The reply's thinking so far, apart from its text; empty when it has none."""
        ...

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        """Its tool calls so far, with the results of those that ended."""
        ...

    @property
    def waiting(self) -> list[str]:
        """Its calls waiting for an ``approve`` now."""
        ...


class Room:
    """One shared room."""

    def __init__(
        self,
        room_id: str,
        *,
        limits: RoomLimits,
        models: Sequence[ModelInfo] = (),
        clock: Callable[[], float] = time.monotonic,
        scheduler: Scheduler = LOOP,
        memory: MemoryBudget | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.id = room_id
        self._limits = limits
        self._models = tuple(models)
        self._clock = clock
        self._scheduler = scheduler
        self._metrics = metrics or Metrics()
        self.log = EventLog(
            max_events=limits.event_log_events,
            max_age_s=limits.event_log_seconds,
            clock=clock,
            max_bytes=limits.event_log_bytes,
            budget=memory,
        )
        self._members: dict[str, Member] = {}
        #: Connections per participant id: one person (token subject) may have several tabs.
        self._sessions_of: dict[str, int] = {}
        self._history = RecentMessages(
            max_messages=limits.history_messages, max_chars=limits.welcome_chars, budget=memory
        )
        self._presence: Roster = PresenceBoard(listed_max=limits.presence_listed)
        self._presence_flush: Timer | None = None
        # Presence has no seq: in a big room it goes out a slice per loop turn, so that one
        # flush to thousands does not hold every other room's frames back.
        self._presence_out = Spreader(
            is_here=self._is_member, on_slow=self._drop_slow, scheduler=scheduler
        )
        self._live: dict[str, LiveReply] = {}
        self._tokens: TokenCoalescer | None = None
        if limits.token_flush_ms > 0:
            self._tokens = TokenCoalescer(
                window_s=limits.token_flush_ms / 1000,
                emit=self._publish_tokens,
                emit_reasoning=self._publish_reasoning,
                scheduler=scheduler,
            )
        #: Called when the room becomes idle (nobody in it, nothing streaming).
        self.on_idle: Callable[[], None] | None = None

    def budgeted(self) -> tuple[Budgeted, ...]:
        """What this room holds against the server's memory budget: its log and its history."""
        return (self.log, self._history)

    @property
    def idle(self) -> bool:
        """True when nobody is in the room and no reply is streaming."""
        return not self._members and not self._live

    @property
    def members(self) -> list[Member]:
        """Everyone connected, one entry per session."""
        return list(self._members.values())

    @property
    def streaming(self) -> bool:
        """True while some reply is live."""
        return bool(self._live)

    # --- what the room remembers --------------------------------------------------------------

    def remember(self, *messages: HistoryMessage) -> None:
        """Keep ``messages`` among the recent ones a welcome carries (loaded, or just sent)."""
        self._history.extend(messages)

    def unqueued(self, message_id: str, *, withdrawn: bool) -> None:
        """A queued prompt kept here left the queue: it started, or it never will (withdrawn)."""
        kept = self._history.get(message_id)
        if kept is not None:
            self._history.replace(msgspec.structs.replace(kept, queued=False, withdrawn=withdrawn))

    def stream_started(self, live: LiveReply, reply: HistoryMessage) -> None:
        """Show ``live`` in snapshots from now on; its ``reply`` joins the recent messages.

        Call it just before publishing the reply's ``stream_start``.
        """
        self._live[live.stream] = live
        self._history.append(reply)

    def stream_ended(self, stream: str, final: HistoryMessage) -> None:
        """The reply of ``stream`` is final (its ``stream_end`` published): keep it as it is."""
        self._live.pop(stream, None)
        if self._tokens is not None:
            self._tokens.forget(stream)
        self._history.replace(final)
        self._became_idle()

    # --- joining and leaving ----------------------------------------------------------------

    def join(
        self, *, name: str | None, since: Since | None, codec: Codec, seat: Seat | None = None
    ) -> Member:
        """Add a participant: queue its welcome, then any replayed events, then go live.

        Without a ``seat`` it is a new participant of its own, with limits of its own.
        """
        limits = self._limits
        if len(self._members) >= limits.participants_per_room:
            raise PeerError(
                "busy",
                f"room {self.id} is full ({limits.participants_per_room} participants)",
                retry_after=ROOM_FULL_RETRY_S,
            )
        member_id = (seat.member_id if seat else None) or new_id("p")
        member = Member(
            id=member_id,
            name=(name or "").strip() or f"guest-{member_id[-4:]}",
            session=new_id("sess"),
            codec=codec,
            outbox=Outbox(max_bytes=limits.outbox_bytes),
            prompts=TokenBucket(
                capacity=limits.prompts_per_minute, per_seconds=60.0, clock=self._clock
            ),
            typing_changes=TokenBucket(
                capacity=limits.typing_changes_per_minute, per_seconds=60.0, clock=self._clock
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
        # The welcome stands at the seq the client stands at once it has it (SSE names it so):
        # the resume point during a replay, so that a reconnect in the middle of one misses
        # nothing.
        at = since.seq if since is not None and replay is not None else self.log.head
        welcome = self._welcome(member, resumed=replay is not None)
        member.preload(Outgoing(welcome, (self.log.epoch, at)))
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
            models=[i for i in self._models if member.grant.allows_model(i.id)],
            participants=self._presence.listed(),
            messages=[] if resumed else self._snapshot_messages(),
            streams=[] if resumed else self.snapshot_streams(),
            participant_count=self._presence.count,
        )

    def _snapshot_messages(self) -> list[HistoryMessage]:
        live = {reply.message_id: reply for reply in self._live.values()}
        messages = [
            msgspec.structs.replace(
                m,
                text=live[m.id].text,
                reasoning=live[m.id].reasoning or None,
                model=live[m.id].model_id,
            )
            if m.id in live
            else m
            for m in self._history
        ]
        return newest_within(messages, self._limits.welcome_chars, keep_newest=False)

    def snapshot_streams(self) -> list[RunningStream]:
        """The replies streaming now, each with its text so far."""
        return [
            RunningStream(
                stream=reply.stream,
                model=reply.model_id,
                message=reply.message_id,
                reply_to=reply.reply_to,
                text=reply.text,
                routed_from=reply.routed_from,
                reasoning=reply.reasoning or None,
                tool_calls=reply.tool_calls or None,
                waiting=reply.waiting or None,
            )
            for reply in self._live.values()
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
        self._became_idle()

    def _became_idle(self) -> None:
        if self.idle and self.on_idle is not None:
            self.on_idle()

    # --- publishing -------------------------------------------------------------------------

    def publish(self, event: RoomEvent) -> int | None:
        """Log a room event and send it to every participant, encoded once per codec.

        Events are made with any ``seq`` (0, say): the log gives each the next one, and this
        returns it. With ``token_flush_ms``, a token (or reasoning) may be gathered instead and
        numbered when its frame goes out (then this returns None); any other event first sends
        what is gathered, and so takes the seq after it.
        """
        tokens = self._tokens
        if tokens is not None:
            if isinstance(event, TokenEvent | ReasoningEvent):
                # Sent at once (its stream was quiet), it took the next seq; else it waits.
                return self.log.head if tokens.add(event) else None
            if tokens.pending:
                tokens.flush()
        return self._log_and_fan_out(event)

    def _publish_tokens(self, stream: str, parts: list[str], emitted_us: int | None) -> None:
        event = TokenEvent(
            seq=0,
            stream=stream,
            text="".join(parts),
            emitted_us=emitted_us,
            tokens=len(parts) if len(parts) > 1 else None,
        )
        self._log_and_fan_out(event)

    def _publish_reasoning(self, stream: str, parts: list[str]) -> None:
        self._log_and_fan_out(ReasoningEvent(seq=0, stream=stream, text="".join(parts)))

    def _flush_tokens(self) -> None:
        if self._tokens is not None:
            self._tokens.flush()

    def _log_and_fan_out(self, event: RoomEvent) -> int | None:
        out = self.log.append(event)
        self._fan_out(out)
        return self.log.head

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

    # --- presence ---------------------------------------------------------------------------

    def set_typing(self, member: Member, active: bool) -> None:
        """Record that ``member`` started or stopped typing; everyone hears at the next flush."""
        member.typing = active
        self._presence.update(member.presence())
        self._presence_changed()

    def _presence_changed(self) -> None:
        """Send the change with the others of this presence interval, in one frame."""
        if self._presence_flush is None:
            # Each flush is a write to every participant: in a big room, fewer and larger.
            limits = self._limits
            interval = max(
                limits.presence_interval, len(self._members) / limits.presence_frames_per_s
            )
            self._presence_flush = self._scheduler.call_later(interval, self._flush_presence)

    def _flush_presence(self) -> None:
        self._presence_flush = None
        diff = self._presence.flush()
        if diff is not None:
            self._presence_out.send(Outgoing(diff), list(self._members.values()))

    def _is_member(self, member: Member) -> bool:
        return self._members.get(member.session) is member

    # --- shutdown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Send what is gathered, then close every connection with 1001 after its queue."""
        if self._tokens is not None:
            self._tokens.close()
        if self._presence_flush is not None:
            self._presence_flush.cancel()
            self._presence_flush = None
        self._presence_out.cancel()
        for member in list(self._members.values()):
            member.outbox.close(CloseCode.GOING_AWAY, "server shutting down", flush=True)
        self._members.clear()
