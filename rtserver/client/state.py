"""RoomState: the conversation as one room's frames describe it, for a script or a view.

It folds ``welcome`` snapshots and room events into turns (a user message and the replies to
it) and lanes (each model's latest reply), like ``RoomState`` of the JavaScript client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from rtserver.client.events import Event
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageEvent,
    MessageStatus,
    ModelInfo,
    ModelSwitch,
    Participant,
    Presence,
    PresenceDiff,
    PresenceEntry,
    ReasoningEvent,
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
    Usage,
    Welcome,
)


@dataclass(eq=False)
class Reply:
    """One model's reply to one user message."""

    id: str
    model: str
    reply_to: str
    stream: str | None = None
    text: str = ""
    #: The model's thinking text, apart from the answer in ``text``; empty when it had none.
    reasoning: str = ""
    status: MessageStatus = "streaming"
    ts: int = 0
    #: Why the stream ended, once it has; history messages only know their status.
    reason: StreamReason | None = None
    usage: Usage | None = None
    ttft_ms: int | None = None
    duration_ms: int | None = None
    tokens_per_s: float | None = None
    error: ErrorInfo | None = None
    tool_calls: dict[str, ToolCallRecord] = field(default_factory=dict)
    #: Calls waiting for an ``approve``, and the answered ones: True allowed, False denied.
    approvals: dict[str, bool | None] = field(default_factory=dict)
    #: Token frames seen live, for a running rate before the server's own figure arrives.
    live_tokens: int = 0
    #: The state's clock at the first live token; None before it or for history.
    first_token_at: float | None = None
    #: The state's clock at a live ``stream_start``; None for a stream joined midway.
    started_at: float | None = None
    #: The router whose lane this reply is in (``model`` is the one answering), if routed.
    routed_from: str | None = None
    #: Why the router chose its first model, as ``stream_start`` said (live streams only).
    route_reason: str | None = None
    #: The ``model_switch`` events of this reply, oldest first.
    switches: list[ModelSwitch] = field(default_factory=list)
    #: The reply of the same model this one regenerated; None for a first answer.
    replaces: str | None = None

    @property
    def lane(self) -> str:
        """The lane the reply is in: its router's, else its model's."""
        return self.routed_from or self.model


@dataclass(eq=False)
class Turn:
    """A user message and the replies to it, in the order they started."""

    id: str
    author: Participant | None
    text: str
    ts: int
    prompt_id: str | None
    replies: list[Reply] = field(default_factory=list)
    #: Waiting in the room's queue (see :attr:`RoomState.queue`), not yet in ``turns``.
    queued: bool = False
    #: Never ran: withdrawn by its author, cleared by a cancel, or dropped at a restart.
    withdrawn: bool = False


class RoomState:
    """Room state folded from events; ``clock`` (seconds) times the live rates."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.models: list[ModelInfo] = []
        self.participants: list[PresenceEntry] = []
        #: Everyone connected; a big room lists only the first few in ``participants``.
        self.participant_count = 0
        self.me: Participant | None = None
        self.turns: list[Turn] = []
        #: The room's queue: prompts stored while streams ran, in the order they will run.
        #: Each leaves it for ``turns`` when it starts, or when withdrawn or cleared.
        self.queue: list[Turn] = []
        self._turns: dict[str, Turn] = {}
        self._replies: dict[str, Reply] = {}
        self._by_stream: dict[str, Reply] = {}
        self._running: dict[str, None] = {}
        #: How many snapshots have replaced everything known.
        self.snapshots = 0

    @property
    def busy(self) -> bool:
        """True while any reply in the room is streaming."""
        return bool(self._running)

    def running(self) -> list[Reply]:
        """Replies streaming now, in the order they started."""
        return [self._by_stream[s] for s in self._running if s in self._by_stream]

    def reply_of_stream(self, stream: str) -> Reply | None:
        return self._by_stream.get(stream)

    def lanes(self) -> dict[str, Reply]:
        """Each lane's latest reply, by model id (a router's id for its routed replies)."""
        return {reply.lane: reply for turn in self.turns for reply in turn.replies}

    def live_rate(self, reply: Reply) -> float | None:
        """Tokens per second measured here while ``reply`` streams (the first token excluded)."""
        if reply.first_token_at is None or reply.live_tokens < 2:
            return None
        seconds = self._clock() - reply.first_token_at
        return (reply.live_tokens - 1) / seconds if seconds > 0 else None

    def live_ttft_ms(self, reply: Reply) -> int | None:
        """The server's time to first token once the stream ended, else the one seen here."""
        if reply.ttft_ms is not None:
            return reply.ttft_ms
        if reply.started_at is None or reply.first_token_at is None:
            return None
        return round((reply.first_token_at - reply.started_at) * 1000)

    def apply(self, event: Event) -> None:
        """Fold one event in; events that change no conversation state are ignored."""
        match event:
            case Welcome():
                self._welcome(event)
            case Presence(participants=participants):
                self.participants = participants
                self.participant_count = len(participants)
            case PresenceDiff():
                self._presence_diff(event)
            case MessageEvent():
                if event.id not in self._turns:
                    self._add_turn(
                        Turn(
                            event.id,
                            event.author,
                            event.text,
                            event.ts,
                            event.prompt_id,
                            queued=event.queued,
                        )
                    )
            case Unqueued():
                self._unqueued(event)
            case StreamStart():
                reply = self._reply(event.message, event.model, event.reply_to, event.ts)
                if reply is not None:
                    self._stream_started(reply, event.stream)
                    reply.started_at = self._clock()
                    reply.routed_from = event.routed_from
                    reply.route_reason = event.route_reason
                    reply.replaces = event.replaces
            case TokenEvent():
                self._token(event)
            case ReasoningEvent():
                self._reasoning(event)
            case ToolCallEvent():
                self._tool_call(event)
            case StreamEnd():
                self._stream_end(event)
            case ModelSwitch():
                self._model_switch(event)
            case ToolResultEvent() | ToolApprovalEvent() | ToolDecisionEvent():
                self._tool_event(event)

    def _presence_diff(self, diff: PresenceDiff) -> None:
        gone = set(diff.left)
        changed = {entry.id: entry for entry in diff.changed}
        kept = [changed.pop(p.id, p) for p in self.participants if p.id not in gone]
        self.participants = kept + list(changed.values())
        self.participant_count = diff.count

    def _welcome(self, welcome: Welcome) -> None:
        self.models = welcome.models
        self.participants = welcome.participants
        self.participant_count = max(welcome.participant_count or 0, len(welcome.participants))
        self.me = welcome.participant
        if welcome.resumed:
            return
        self.snapshots += 1
        self.turns = []
        self.queue = []
        self._turns.clear()
        self._replies.clear()
        self._by_stream.clear()
        self._running.clear()
        for message in welcome.messages:
            self._history(message)
        for running in welcome.streams:
            reply = self._reply(running.message, running.model, running.reply_to, 0)
            if reply is not None:
                # The running stream's text is newer than the message's last checkpoint.
                reply.text = running.text
                reply.model = running.model
                reply.routed_from = running.routed_from
                reply.reasoning = running.reasoning or ""
                if running.tool_calls is not None:
                    reply.tool_calls = {c.call: c for c in running.tool_calls}
                    reply.approvals = dict.fromkeys(running.waiting or ())
                self._stream_started(reply, running.stream)

    def _history(self, message: HistoryMessage) -> None:
        if message.role == "user":
            self._add_turn(
                Turn(
                    message.id,
                    message.author,
                    message.text,
                    message.ts,
                    message.prompt_id,
                    queued=message.queued,
                    withdrawn=message.withdrawn,
                )
            )
            return
        if message.model is None or message.reply_to is None:
            return
        reply = self._reply(message.id, message.model, message.reply_to, message.ts)
        if reply is None:
            return
        reply.text = message.text
        reply.routed_from = message.routed_from
        reply.reasoning = message.reasoning or ""
        reply.status = message.status
        reply.replaces = message.replaces
        reply.usage = message.usage
        reply.error = message.error
        reply.tool_calls = {c.call: c for c in message.tool_calls or ()}
        if message.status not in ("complete", "streaming"):
            reply.reason = message.status  # type: ignore[assignment]
        if message.stream is not None:
            reply.stream = message.stream
            self._by_stream[message.stream] = reply

    def _add_turn(self, turn: Turn) -> None:
        self._turns[turn.id] = turn
        (self.queue if turn.queued else self.turns).append(turn)

    def _unqueued(self, event: Unqueued) -> None:
        """Queued prompts started (they join ``turns``) or never will (withdrawn)."""
        for message_id in event.messages:
            turn = next((t for t in self.queue if t.id == message_id), None)
            if turn is None:
                continue
            self.queue.remove(turn)
            turn.queued = False
            turn.withdrawn = event.reason != "started"
            self.turns.append(turn)

    def _reply(self, reply_id: str, model: str, reply_to: str, ts: int) -> Reply | None:
        """The reply with this id, made if new; None when its user message is unknown."""
        known = self._replies.get(reply_id)
        if known is not None:
            return known
        turn = self._turns.get(reply_to)
        if turn is None:
            return None
        reply = self._replies[reply_id] = Reply(id=reply_id, model=model, reply_to=reply_to, ts=ts)
        turn.replies.append(reply)
        return reply

    def _stream_started(self, reply: Reply, stream: str) -> None:
        reply.stream = stream
        reply.status = "streaming"
        self._by_stream[stream] = reply
        self._running[stream] = None

    def _token(self, event: TokenEvent) -> None:
        reply = self._by_stream.get(event.stream)
        if reply is None:
            return
        reply.text += event.text
        reply.live_tokens += event.tokens or 1
        if reply.first_token_at is None:
            reply.first_token_at = self._clock()

    def _reasoning(self, event: ReasoningEvent) -> None:
        reply = self._by_stream.get(event.stream)
        if reply is not None:
            reply.reasoning += event.text

    def _tool_call(self, event: ToolCallEvent) -> None:
        reply = self._by_stream.get(event.stream)
        if reply is None:
            return
        known = reply.tool_calls.get(event.call)
        reply.tool_calls[event.call] = ToolCallRecord(
            call=event.call,
            name=event.name or (known.name if known else None),
            args=(known.args if known else "") + event.args,
        )

    def _tool_event(self, event: ToolResultEvent | ToolApprovalEvent | ToolDecisionEvent) -> None:
        reply = self._by_stream.get(event.stream)
        if reply is None:
            return
        known = reply.tool_calls.get(event.call) or ToolCallRecord(call=event.call)
        if isinstance(event, ToolResultEvent):
            reply.tool_calls[event.call] = msgspec.structs.replace(
                known,
                name=known.name or event.name,
                result=event.result if event.error is None else None,
                error=event.error,
                duration_ms=event.duration_ms,
            )
        elif isinstance(event, ToolApprovalEvent):
            reply.tool_calls[event.call] = msgspec.structs.replace(
                known, name=known.name or event.name, args=event.args
            )
            reply.approvals[event.call] = None
        else:
            reply.approvals[event.call] = event.allow

    def _stream_end(self, event: StreamEnd) -> None:
        self._running.pop(event.stream, None)
        reply = self._by_stream.get(event.stream)
        if reply is None:
            return
        # `length` is a complete reply that hit max_tokens; the reason keeps that apart.
        reply.status = "complete" if event.reason == "length" else event.reason
        reply.reason = event.reason
        reply.usage = event.usage
        reply.ttft_ms = event.ttft_ms
        reply.duration_ms = event.duration_ms
        reply.tokens_per_s = event.tokens_per_s
        reply.error = event.error

    def _model_switch(self, event: ModelSwitch) -> None:
        reply = self._by_stream.get(event.stream)
        if reply is None:
            return
        reply.model = event.model
        reply.switches.append(event)
