"""The turns of a room that several nodes share (``--redis``): one node runs them at a time.

A :class:`SharedTurns` is a :class:`~rtserver.turns.turns.Turns` over a
:class:`~rtserver.room.mirror.SharedRoom` (whose events the Redis bus numbers), plus what
several nodes need:

- A frame that acts on the turn (a prompt, a cancel, an interrupt, ...) goes to the node that
  holds the room's turn lease, if another node does; a prompt with nobody holding it takes it
  here. The lease is let go once the last stream here has ended.
- Per-user prompt rates and daily budgets are counted in Redis.
- While streams of another node run, this node checks that node's lease now and then: once it
  has expired, the streams are ended ``interrupted`` (:func:`~rtserver.bus.orphans.end_orphans`).
- Presence is merged with the other nodes' (:class:`~rtserver.bus.presence.ClusterPresence`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, cast

from redis.exceptions import RedisError

from rtserver.auth.limits import DailyBudget
from rtserver.auth.ratelimit import TokenBucket
from rtserver.bus.base import RoomLink
from rtserver.bus.control import Control, Request, Sender
from rtserver.bus.counters import ClusterCounters
from rtserver.bus.lease import LEASE_MS, TurnLease
from rtserver.bus.orphans import end_orphans
from rtserver.bus.presence import ClusterPresence
from rtserver.bus.redis import RedisBus
from rtserver.errors import PeerError, StoreError
from rtserver.protocol.codec import JSON, Codec
from rtserver.protocol.frames import (
    ClientFrame,
    Hello,
    Interrupt,
    Participant,
    Ping,
    Since,
    Typing,
)
from rtserver.room.member import Member, Seat
from rtserver.room.mirror import SharedRoom
from rtserver.room.outbox import Outbox
from rtserver.room.presence import PresenceBoard
from rtserver.room.room import new_id
from rtserver.turns.turns import Turns

log = logging.getLogger(__name__)

#: Seconds between checks for a dead node's streams (and participants) while a room is open.
WATCH_S: Final = LEASE_MS / 2000
#: What a sender is told to wait when the bus does not answer.
BUS_RETRY_S: Final = 1.0
#: Frames that never concern the turn: answered where they arrive.
_LOCAL: Final = (Typing, Ping, Hello)
#: How long a session's node is remembered without its leave (a node that died forgets none).
SESSION_TTL_MS: Final = 86_400_000
#: A forwarded sender's own rate is counted where they are connected (and in Redis).
_UNLIMITED: Final = 1 << 30


@dataclass(frozen=True, slots=True)
class Cluster:
    """What the rooms of one node share: the bus and its control streams and counters."""

    bus: RedisBus
    control: Control
    counters: ClusterCounters


def starts_turn(frame: ClientFrame) -> bool:
    """True for a frame that may start streams (and so needs the turn lease)."""
    tag = frame.__struct_config__.tag
    return tag in ("prompt", "regenerate") or (isinstance(frame, Interrupt) and bool(frame.text))


class SharedBudget(DailyBudget):
    """A daily budget whose spending is counted in Redis too: the check that counts is the
    cluster's (made before a prompt is accepted); a local one, if any, is kept as well."""

    __slots__ = ("_local", "_shared")

    def __init__(self, local: DailyBudget | None, shared: Callable[[int], None]) -> None:
        super().__init__(per_day=0, clock=time.time)
        self._local = local
        self._shared = shared

    def check(self) -> None:
        if self._local is not None:
            self._local.check()

    def spend(self, tokens: int) -> None:
        if self._local is not None:
            self._local.spend(tokens)
        self._shared(tokens)


class SharedTurns(Turns):
    """The turns of one room on one of several nodes."""

    room_class = SharedRoom

    def __init__(self, room_id: str, *, cluster: Cluster, **kwargs: Any) -> None:
        super().__init__(room_id, **kwargs)
        self._cluster = cluster
        self._lease = TurnLease(cluster.bus, room_id, on_lost=self._lease_lost)
        self._lease_lock = asyncio.Lock()
        self._link: RoomLink | None = None
        self._presence: ClusterPresence | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def shared_room(self) -> SharedRoom:
        return cast(SharedRoom, self.room)

    # --- opening and letting go ---------------------------------------------------------------

    async def load(self) -> None:
        """Load recent messages, link the copy to the bus, end what a dead node left."""
        try:
            await self._open()
        except RedisError:
            await self._detach()
            raise PeerError(
                "busy", "the room's other nodes cannot be reached", retry_after=BUS_RETRY_S
            ) from None

    async def _open(self) -> None:
        room, bus = self.shared_room, self._cluster.bus
        room.load(await self._store.recent(self.id, self._limits.history_messages))

        def share(board: PresenceBoard) -> ClusterPresence:
            return ClusterPresence(bus, self.id, board, on_change=room.presence_changed)

        presence = self._presence = cast(ClusterPresence, room.share_presence(share))
        await presence.start()
        self._link = await bus.attach(self.id, room)
        room.relay = self._link.publish
        room.on_restart = lambda: self._spawn(self._reload())
        await self._end_orphans()
        # Prompts left queued by a node that is gone wait again here; a node that runs the
        # room's turn holds its queue itself.
        if await self._lease.holder() is None:
            await self._restore_queue()
        self._watcher = asyncio.create_task(self._watch(), name=f"room {self.id} watch")

    async def _reload(self) -> None:
        """The bus lost the room's log (and events in it this node had not read): the store
        holds every message, so the recent ones come from it again."""
        try:
            messages = await self._store.recent(self.id, self._limits.history_messages)
        except StoreError:
            log.warning("room %s: could not reload its messages after the bus restarted", self.id)
            return
        self.shared_room.load(messages)

    def let_go(self) -> None:
        self._spawn(self._detach())

    async def close(self) -> None:
        await super().close()
        await self._detach()

    async def _detach(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        with contextlib.suppress(RedisError):
            await self._lease.release()
        if self._presence is not None:
            await self._presence.close()
        if self._link is not None:
            await self._link.close()

    # --- sessions: where an SSE client's POSTs are to go ------------------------------------

    def join(
        self, *, name: str | None, since: Since | None, codec: Codec, seat: Seat | None = None
    ) -> Member:
        member = super().join(name=name, since=since, codec=codec, seat=seat)
        member.budget = self._shared_budget(member.owner, member.budget)
        self._spawn(self._hold_session(member.session))
        return member

    def _shared_budget(self, owner: str, local: DailyBudget | None) -> DailyBudget | None:
        """``owner``'s daily budget, whose spending is also counted in Redis (for whichever
        node runs the streams, now or from the queue)."""
        per_day = self._limits.tokens_per_user_per_day
        if not per_day:
            return local
        return SharedBudget(local, lambda tokens: self._spawn(self._spend(owner, tokens)))

    def leave(self, member: Member) -> None:
        self._spawn(self._drop_session(member.session))
        super().leave(member)

    async def _hold_session(self, session: str) -> None:
        bus = self._cluster.bus
        with contextlib.suppress(RedisError):
            await bus.client.set(
                bus.keys.room(self.id).session(session), bus.node, px=SESSION_TTL_MS
            )

    async def _drop_session(self, session: str) -> None:
        bus = self._cluster.bus
        with contextlib.suppress(RedisError):
            await bus.client.delete(bus.keys.room(self.id).session(session))

    async def act_by_session(self, session: str, owner: str, frame: ClientFrame) -> bool:
        """Send a frame POSTed here for a session another node holds to that node; False
        when no node holds ``session``. ``owner`` is the POST's identity key."""
        bus = self._cluster.bus
        try:
            node = await bus.client.get(bus.keys.room(self.id).session(session))
        except RedisError:
            raise PeerError(
                "busy", "the room's other nodes cannot be reached", retry_after=BUS_RETRY_S
            ) from None
        holder = node.decode() if isinstance(node, bytes) else node
        if holder is None or holder == bus.node:
            return False
        sender = Sender(participant=Participant(id="", name=""), owner=owner)
        await self._cluster.control.ask(holder, self.id, frame, sender, session=session)
        return True

    # --- frames: here, or to the node running the turn ----------------------------------------

    async def act(self, member: Member, frame: ClientFrame) -> None:
        if isinstance(frame, _LOCAL):
            await super().act(member, frame)
            return
        # Checked here, before anything reaches another node: it acts for the sender as is.
        member.grant.check(frame, defaults=self._catalog.defaults)
        starts = starts_turn(frame)
        try:
            if starts:
                await self._count(member)
            owner = await self._owner(take=starts)
        except RedisError:
            raise PeerError(
                "busy", "the room's other nodes cannot be reached", retry_after=BUS_RETRY_S
            ) from None
        if owner is not None:
            sender = Sender(participant=member.identity, owner=member.owner)
            await self._cluster.control.ask(owner, self.id, frame, sender)
            return
        await self._act_here(member, frame)

    async def act_forwarded(self, request: Request) -> None:
        """Act on a frame another node forwarded: for a session here (an SSE POST that
        reached another node), or for its sender, as the turn's owner."""
        if request.session is not None:
            await self.act(
                self._session_member(request.session, request.sender.owner), request.frame
            )
            return
        if starts_turn(request.frame):
            async with self._lease_lock:
                if not await self._lease.acquire():
                    raise PeerError(
                        "busy", "the room's turn moved to another node", retry_after=BUS_RETRY_S
                    )
        await self._act_here(self._stand_in(request.sender), request.frame)

    async def _act_here(self, member: Member, frame: ClientFrame) -> None:
        try:
            await super().act(member, frame)
        finally:
            await self._release_if_done()

    async def _owner(self, *, take: bool) -> str | None:
        """The other node that runs the room's turn, or None to act here (taking the lease
        when ``take``)."""
        async with self._lease_lock:
            if self._lease.held:
                return None
            for _ in range(3):
                if take and await self._lease.acquire():
                    return None
                holder = await self._lease.holder()
                if holder is not None and holder != self._cluster.bus.node:
                    return holder
                if not take:
                    return None
                # The lease lapsed between the two calls: try to take it again.
        raise PeerError("busy", "the room's turn is changing hands", retry_after=BUS_RETRY_S)

    async def _count(self, member: Member) -> None:
        limits, counters = self._limits, self._cluster.counters
        await counters.check_budget(member.owner, per_day=limits.tokens_per_user_per_day)
        await counters.take_prompt(member.owner, per_minute=limits.prompts_per_minute)

    def _session_member(self, session: str, owner: str) -> Member:
        wanted = session.encode()
        for member in self.room.members:
            if hmac.compare_digest(member.session.encode(), wanted):
                if owner and member.owner != owner:
                    raise PeerError("forbidden", "this session belongs to another token subject")
                return member
        raise PeerError("forbidden", "no such session in this room: open a new event stream")

    def _stand_in(self, sender: Sender) -> Member:
        """The sender of a forwarded frame, as this node acts for them (never joined here)."""
        participant = sender.participant

        def unlimited() -> TokenBucket:
            return TokenBucket(capacity=_UNLIMITED, per_seconds=60.0, clock=self._clock)

        return Member(
            id=participant.id,
            name=participant.name,
            session=new_id("fwd"),
            codec=JSON,
            outbox=Outbox(max_bytes=self._limits.outbox_bytes),
            prompts=unlimited(),
            typing_changes=unlimited(),
            owner=sender.owner,
            budget=self._shared_budget(sender.owner, None),
        )

    # --- the lease --------------------------------------------------------------------------

    def _streams_ended(self) -> None:
        super()._streams_ended()
        self._spawn(self._release_if_done())

    async def _run_next(self) -> None:
        # What waits runs only under the lease; a node that cannot take it leaves it to the
        # node that holds it (which has the same queue in the store).
        if len(self._queue):
            async with self._lease_lock:
                try:
                    taken = await self._lease.acquire()
                except RedisError:
                    taken = False
            if not taken:
                self._wait_and_retry_lease()
                return
        try:
            await super()._run_next()
        finally:
            await self._release_if_done()

    def _wait_and_retry_lease(self) -> None:
        self._retry = asyncio.get_running_loop().call_later(WATCH_S, self._run_next_soon)

    @property
    def _busy(self) -> bool:
        """True while streams run here or something waits to: the lease is still needed."""
        running = self._next
        # Asked from inside that task (its last step), it is not what still needs the lease.
        running_next = (
            running is not None and not running.done() and running is not asyncio.current_task()
        )
        return bool(self._generations) or bool(len(self._queue)) or running_next

    async def _release_if_done(self) -> None:
        async with self._lease_lock:
            if self._lease.held and not self._busy:
                await self._lease.release()

    def _lease_lost(self) -> None:
        # Another node may take the turn now: no stream may run on here meanwhile.
        self._spawn(self.stop_all("interrupted"))

    async def _spend(self, owner: str, tokens: int) -> None:
        try:
            await self._cluster.counters.spend(owner, tokens)
        except PeerError:
            log.warning("room %s: %d tokens of %s were not counted", self.id, tokens, owner)

    # --- a dead node's streams ----------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            try:
                if self.room.streaming and not self._generations:
                    await self._end_orphans()
                if self._presence is not None:
                    await self._presence.sweep()
            except (RedisError, StoreError, PeerError) as exc:
                log.warning("room %s: could not check for dead nodes (%s)", self.id, exc)

    async def _end_orphans(self) -> None:
        relay = self.shared_room.relay
        if relay is None:
            return
        async with self._lease_lock:
            if self._generations:
                return
            await end_orphans(
                self.id,
                lease=self._lease,
                store=self._store,
                publish=relay,
                history=self._limits.history_messages,
            )

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
