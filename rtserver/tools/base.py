"""The tool interface: what a model is told about a tool, and how the server calls it.

A :class:`Tool` has a name, a description and a JSON schema of its arguments, and one
``async call(args) -> str``. Cancelling the task awaiting ``call`` cancels the call: an MCP tool
tells its server (``notifications/cancelled``), an async Python tool is cancelled where it awaits.
Failures cross this boundary only as :class:`ToolError`, with one of the protocol's tool error
codes and a message of our own, so a tool's exception text never reaches the room.

A :class:`ToolSource` is one ``[[tools]]`` entry: a Python function (one tool) or an MCP server
(the tools it lists, which may change while it runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from rtserver.protocol.frames import ToolErrorCode, ToolErrorInfo

Approval = Literal["auto", "ask"]


class ToolError(Exception):
    """A tool call that produced no result; the model is told ``code`` and ``message``."""

    def __init__(self, code: ToolErrorCode, message: str) -> None:
        super().__init__(code, message)
        self.code: ToolErrorCode = code
        self.message = message

    def to_info(self) -> ToolErrorInfo:
        return ToolErrorInfo(code=self.code, message=self.message)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as a model sees it: its name, what it does and its arguments' JSON schema."""

    name: str
    description: str
    parameters: Mapping[str, object] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


class Tool(Protocol):
    """One callable tool."""

    @property
    def spec(self) -> ToolSpec:
        """What the model is told about the tool."""
        ...

    async def call(self, args: Mapping[str, object]) -> str:
        """Run the tool with decoded arguments; raise :class:`ToolError` when it fails."""
        ...


class ToolSource(Protocol):
    """One configured ``[[tools]]`` entry and the tools it offers now."""

    @property
    def id(self) -> str:
        """The entry's ``id``, which models name in ``tools = [..]``."""
        ...

    def tools(self) -> Sequence[Tool]:
        """The tools offered at this moment (an MCP server's list may change)."""
        ...

    async def start(self) -> None:
        """Start whatever the tools need (an MCP server's connection); called with the app."""
        ...

    async def aclose(self) -> None:
        """Stop it; called when the app stops."""
        ...
