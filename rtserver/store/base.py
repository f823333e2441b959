"""The Store protocol: what rooms need from persistence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rtserver.protocol.frames import ErrorInfo, HistoryMessage, MessageStatus, ToolCallRecord, Usage


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

    async def lane(self, room: str, model: str, limit: int) -> list[HistoryMessage]:
        """What ``model`` sees: the room's user messages and its own finished replies.

        A router's lane holds the replies routed from it (whichever model answered each);
        a model's own lane holds none of those.
        """
        ...

    async def switch_model(self, message_id: str, model: str) -> None:
        """Record that ``model`` answers a routed reply still streaming (after a failure)."""
        ...

    async def delete_before(self, ts_ms: int) -> int:
        """Delete every message with ``ts`` before ``ts_ms`` (none still streaming); how many."""
        ...

    async def ping(self) -> None:
        """Return once the store answers a trivial query; raise when it cannot."""
        ...

    async def close(self) -> None: ...
