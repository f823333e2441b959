"""The Store protocol: what rooms need from persistence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageStatus,
    ModelId,
    Params,
    ToolCallRecord,
    Usage,
)


class PromptRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a queued prompt asked for, stored with it so that it can run after a restart."""

    models: list[ModelId]
    params: Params | None = None


@dataclass(frozen=True, slots=True)
class QueuedPrompt:
    """A stored user message waiting in its room's queue, and what it asked for."""

    message: HistoryMessage
    request: PromptRequest


class ReplyStore(Protocol):
    """What a generation needs of persistence: a room's Store, or nothing for one-shot chats."""

    async def checkpoint(self, message_id: str, text: str, reasoning: str | None = None) -> None:
        """Save a streaming reply's text so far, and its reasoning when one is given."""
        ...

    async def finish_reply(
        self,
        message_id: str,
        *,
        text: str,
        status: MessageStatus,
        usage: Usage | None,
        tool_calls: Sequence[ToolCallRecord],
        error: ErrorInfo | None,
        reasoning: str = "",
    ) -> None:
        """Finalise a reply with its reason, usage, tool calls and reasoning ("" for none)."""
        ...


class Store(ReplyStore, Protocol):
    """Durable rooms and messages. Every write is committed before its coroutine returns."""

    async def recover(self) -> int:
        """Mark replies left ``streaming`` by a previous run ``interrupted``; return how many."""
        ...

    async def start_turn(
        self, room: str, user: HistoryMessage, prompt_id: str, replies: Sequence[HistoryMessage]
    ) -> bool:
        """Store a user message and its reply placeholders at once.

        Returns False, storing nothing, when ``prompt_id`` is already stored in ``room``.
        """
        ...

    async def has_prompt(self, room: str, prompt_id: str) -> bool: ...

    async def recent(self, room: str, limit: int) -> list[HistoryMessage]:
        """The last ``limit`` messages of ``room``, oldest first."""
        ...

    async def page(
        self, room: str, *, limit: int, before: str | None
    ) -> tuple[list[HistoryMessage], str | None]:
        """Up to ``limit`` messages before message ``before`` (or the newest), oldest first.

        Also returns the ``before`` of the page preceding this one, None at the start.
        Raises PeerError ``not_found`` when ``before`` is not a message of ``room``.
        """
        ...

    async def lane(
        self, room: str, model: str, limit: int, *, upto: str | None = None
    ) -> list[HistoryMessage]:
        """What ``model`` sees: the room's user messages and its own finished replies.

        Each user message is followed by the model's newest finished reply to it (a lane may
        hold several after a regenerate); queued and withdrawn prompts are left out. With
        ``upto`` (a user message id) the lane ends at that message, without any reply to it:
        what a regenerate of that reply is sent. A router's lane holds the replies routed
        from it (whichever model answered each); a model's own lane holds none of those.
        """
        ...

    async def switch_model(self, message_id: str, model: str) -> None:
        """Record that ``model`` answers a routed reply still streaming (after a failure)."""
        ...

    # --- the room's queue and regenerate (issue 16) --------------------------------------------

    async def enqueue(
        self, room: str, user: HistoryMessage, prompt_id: str, request: PromptRequest
    ) -> bool:
        """Store a user message as queued, with its request; False if ``prompt_id`` is known."""
        ...

    async def start_queued(
        self, room: str, message_id: str, replies: Sequence[HistoryMessage]
    ) -> bool:
        """Take a queued prompt out of the queue and store its reply placeholders, at once.

        The message moves to the end of the room's order, where its turn runs. Returns False,
        storing nothing, when the message is no longer queued (withdrawn meanwhile).
        """
        ...

    async def withdraw(self, room: str, message_ids: Sequence[str]) -> list[str]:
        """Mark queued prompts withdrawn; return those that were still queued, in order given."""
        ...

    async def queued(self, room: str) -> list[QueuedPrompt]:
        """The room's queued prompts, in arrival order (to run them after a restart)."""
        ...

    async def add_replies(self, room: str, replies: Sequence[HistoryMessage]) -> None:
        """Store reply placeholders (``streaming``) of an existing user message: a regenerate."""
        ...

    async def message(self, room: str, message_id: str) -> HistoryMessage | None:
        """One message of ``room`` by id, or None."""
        ...

    async def newest_reply(self, room: str, reply_to: str, model: str) -> HistoryMessage | None:
        """``model``'s newest reply to user message ``reply_to``, whatever its status, or None."""
        ...

    async def delete_before(self, ts_ms: int) -> int:
        """Delete every message with ``ts`` before ``ts_ms`` (none still streaming); how many."""
        ...

    async def ping(self) -> None:
        """Return once the store answers a trivial query; raise when it cannot."""
        ...

    async def close(self) -> None: ...
