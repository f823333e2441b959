"""A room shared by several nodes: its events are numbered elsewhere, its state follows them.

On one node a :class:`~rtserver.room.room.Room` numbers what it publishes and holds what the
turns layer tells it. A :class:`SharedRoom` is one node's copy of a room that several nodes
hold: what it publishes is relayed (to the Redis bus, which numbers it), and it logs, fans out
and remembers only what the bus delivers back, in the room's one order, from whichever node.
So its recent messages and running streams are exactly what its event log says, on every node:
a joiner's snapshot never holds an event that is still on its way to it, and a snapshot taken on
one node equals one taken at the same seq on another.

Synchronous and free of I/O, like the room: the relay is a callable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.frames import (
    HistoryMessage,
    MessageEvent,
    MessageStatus,
    ModelSwitch,
    ReasoningEvent,
    RoomEvent,
    StreamEnd,
    StreamReason,
    StreamStart,
    TokenEvent,
    ToolApprovalEvent,
    ToolCallEvent,
    ToolCallRecord,
    ToolDecisionEvent,
    ToolResultEvent,
    Unqueued,
)
from rtserver.room.presence import PresenceBoard, Roster
from rtserver.room.room import LiveReply, Room

_STATUS: dict[StreamReason, MessageStatus] = {
    "complete": "complete",
    "length": "complete",
    "cancelled": "cancelled",
    "interrupted": "interrupted",
    "error": "error",
}


_TOOL_EVENTS = (ToolCallEvent, ToolApprovalEvent, ToolDecisionEvent, ToolResultEvent)


class MirroredReply:
    """A reply streaming somewhere in the cluster, as its delivered events tell it."""

    __slots__ = (
        "_calls",
        "_parts",
        "_thoughts",
        "_waiting",
        "message_id",
        "model_id",
        "reply_to",
        "routed_from",
        "stream",
    )

    def __init__(self, start: StreamStart) -> None:
        self.stream = start.stream
        self.model_id = start.model
        self.message_id = start.message
        self.reply_to = start.reply_to
        self.routed_from = start.routed_from
        self._parts: list[str] = []
        self._thoughts: list[str] = []
        self._calls: dict[str, ToolCallRecord] = {}
        self._waiting: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def reasoning(self) -> str:
        return "".join(self._thoughts)

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        return list(self._calls.values())

    @property
    def waiting(self) -> list[str]:
        return list(self._waiting)

    def add(self, text: str) -> None:
        self._parts.append(text)

    def follow_tool(self, event: RoomEvent) -> None:
        """A tool event of this stream: a call's fragment, its approval, decision or result."""
        if isinstance(event, ToolCallEvent):
            known = self._calls.get(event.call)
            self._calls[event.call] = ToolCallRecord(
                call=event.call,
                name=event.name or (known.name if known else None),
                args=(known.args if known else "") + event.args,
            )
        elif isinstance(event, ToolApprovalEvent):
            self._waiting.append(event.call)
        elif isinstance(event, ToolDecisionEvent):
            if event.call in self._waiting:
                self._waiting.remove(event.call)
        elif isinstance(event, ToolResultEvent):
            known = self._calls.get(event.call)
            self._calls[event.call] = ToolCallRecord(
                call=event.call,
                name=event.name,
                args=known.args if known else "",
                result=event.result,
                error=event.error,
                duration_ms=event.duration_ms,
            )

    def think(self, text: str) -> None:
        self._thoughts.append(text)


class SharedRoom(Room):
    """One node's copy of a room that several nodes share."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Where published events go to be numbered; set once the room is linked to the bus.
        self.relay: Callable[[RoomEvent], None] | None = None
        self._mirrored: dict[str, MirroredReply] = {}
        self._restarted = False
        #: Told when the log started again: what it held is to be read from the store again.
        self.on_restart: Callable[[], None] | None = None

    def share_presence(self, share: Callable[[PresenceBoard], Roster]) -> Roster:
        """Have the room's presence also hold other nodes' participants (``share`` wraps the
        board, before anyone joins); returns the roster the room now keeps."""
        board = self._presence
        assert isinstance(board, PresenceBoard), "presence is shared once"
        roster = self._presence = share(board)
        return roster

    def presence_changed(self) -> None:
        """Someone on another node joined, left or typed: send it with the next diff."""
        self._presence_changed()

    # --- what the turns layer tells: the delivered events tell it instead ---------------------

    def load(self, messages: list[HistoryMessage]) -> None:
        """Keep ``messages`` (from the store) among the recent ones, in place of those kept."""
        self._history.drop_all()
        Room.remember(self, *messages)

    def remember(self, *messages: HistoryMessage) -> None:
        return None  # the message's event, once delivered, is what adds it

    def stream_started(self, live: LiveReply, reply: HistoryMessage) -> None:
        return None  # its stream_start, once delivered

    def unqueued(self, message_id: str, *, withdrawn: bool) -> None:
        return None  # its unqueued, once delivered

    def stream_ended(self, stream: str, final: HistoryMessage) -> None:
        return None  # its stream_end, once delivered

    # --- publishing goes out; delivery comes in -------------------------------------------------

    def publish(self, event: RoomEvent) -> int | None:
        """Relay ``event`` to be numbered where the room's events are: its seq is not known
        here yet, so this returns None."""
        Room.publish(self, event)
        return None

    def _log_and_fan_out(self, event: RoomEvent) -> int | None:
        if self.relay is None:
            raise RuntimeError(f"room {self.id} is not linked to the bus yet")
        self.relay(event)
        return None

    def restart(self, epoch: str, head: int) -> None:
        """The room's log stands at ``head`` of ``epoch``; a copy already in use starts over.

        A log started again (Redis lost it) cannot be replayed to the participants here: they
        are closed with 1001 and come back for a snapshot of the new epoch.
        """
        self.log.restart(epoch, head)
        if self._restarted:
            for member in self.members:
                member.outbox.close(CloseCode.GOING_AWAY, "the room's log started again: resume")
                self.leave(member)
            if self.on_restart is not None:
                self.on_restart()
        self._restarted = True

    def deliver(self, event: RoomEvent, mine: bool) -> None:
        """One event of the room, numbered, in order: follow it, log it, fan it out."""
        self._follow(event)
        Room._log_and_fan_out(self, event)

    def _follow(self, event: RoomEvent) -> None:
        if isinstance(event, TokenEvent):
            mirrored = self._mirrored.get(event.stream)
            if mirrored is not None:
                mirrored.add(event.text)
        elif isinstance(event, ReasoningEvent):
            mirrored = self._mirrored.get(event.stream)
            if mirrored is not None:
                mirrored.think(event.text)
        elif isinstance(event, MessageEvent):
            self._message(event)
        elif isinstance(event, StreamStart):
            self._started(event)
        elif isinstance(event, StreamEnd):
            self._ended(event)
        elif isinstance(event, ModelSwitch):
            mirrored = self._mirrored.get(event.stream)
            if mirrored is not None:
                # A routed stream falls back: the model answering it is another from now on.
                mirrored.model_id = event.model
        elif isinstance(event, Unqueued):
            for message_id in event.messages:
                Room.unqueued(self, message_id, withdrawn=event.reason != "started")
        elif isinstance(event, _TOOL_EVENTS):
            mirrored = self._mirrored.get(event.stream)
            if mirrored is not None:
                mirrored.follow_tool(event)

    def _known(self, message_id: str) -> bool:
        return any(m.id == message_id for m in self._history)

    def _message(self, event: MessageEvent) -> None:
        if not self._known(event.id):  # loaded from the store already
            Room.remember(
                self,
                HistoryMessage(
                    id=event.id,
                    role="user",
                    text=event.text,
                    status="complete",
                    ts=event.ts,
                    author=event.author,
                    prompt_id=event.prompt_id,
                    queued=event.queued,
                ),
            )

    def _started(self, event: StreamStart) -> None:
        mirrored = self._mirrored[event.stream] = MirroredReply(event)
        reply = HistoryMessage(
            id=event.message,
            role="assistant",
            text="",
            status="streaming",
            ts=event.ts,
            model=event.model,
            reply_to=event.reply_to,
            stream=event.stream,
            routed_from=event.routed_from,
            replaces=event.replaces,
        )
        if self._known(reply.id):
            self._live[event.stream] = mirrored
            self._history.replace(reply)
        else:
            Room.stream_started(self, mirrored, reply)

    def _ended(self, event: StreamEnd) -> None:
        mirrored = self._mirrored.pop(event.stream, None)
        status = _STATUS[event.reason]
        if mirrored is None:
            # Its start was before this copy's window: the store's text is all there is.
            kept = next((m for m in self._history if m.stream == event.stream), None)
            if kept is not None:
                self._history.replace(msgspec.structs.replace(kept, status=status))
            return
        kept = next((m for m in self._history if m.id == mirrored.message_id), None)
        final = HistoryMessage(
            id=mirrored.message_id,
            role="assistant",
            text=mirrored.text,
            status=status,
            ts=kept.ts if kept is not None else 0,
            model=mirrored.model_id,
            reply_to=mirrored.reply_to,
            usage=event.usage,
            stream=event.stream,
            tool_calls=mirrored.tool_calls or None,
            error=event.error,
            reasoning=mirrored.reasoning or None,
            routed_from=mirrored.routed_from,
            replaces=kept.replaces if kept is not None else None,
        )
        Room.stream_ended(self, event.stream, final)
