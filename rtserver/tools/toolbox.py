"""Every configured tool source, and the tools one model may call at one moment.

The :class:`Toolbox` holds the ``[[tools]]`` entries (and ``builtin``), starts them with the app
and stops them with it. :meth:`Toolbox.for_model` takes a snapshot for one step of one reply:
a :class:`ToolSet` of the model's tools by name, each bound to its entry's approval and timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from rtserver.config import ToolConfig
from rtserver.tools.base import Approval, Tool, ToolSource, ToolSpec
from rtserver.tools.builtin import BuiltinSource
from rtserver.tools.mcp import MCPSource
from rtserver.tools.python import PythonSource

log = logging.getLogger(__name__)
#: Seconds a built-in tool may take.
BUILTIN_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class BoundTool:
    """A tool with the settings of the entry it comes from."""

    tool: Tool
    source: str
    approval: Approval
    timeout_s: float

    @property
    def name(self) -> str:
        return self.tool.spec.name


class ToolSet:
    """The tools one step of a reply may call, by name."""

    def __init__(self, tools: Iterable[BoundTool] = ()) -> None:
        self._tools: dict[str, BoundTool] = {}
        for bound in tools:
            # Two entries offering one name: the model could not tell them apart, so the
            # first (in the model's `tools` order) is the one it gets.
            if bound.name in self._tools:
                log.warning(
                    "tool %r of %r hidden by %r",
                    bound.name,
                    bound.source,
                    self._tools[bound.name].source,
                )
                continue
            self._tools[bound.name] = bound

    def get(self, name: str) -> BoundTool | None:
        return self._tools.get(name)

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        """What the model is told, in a stable order."""
        return tuple(bound.tool.spec for bound in self._tools.values())

    def __iter__(self) -> Iterator[BoundTool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)


@dataclass(frozen=True, slots=True)
class _Entry:
    source: ToolSource
    approval: Approval
    timeout_s: float


class Toolbox:
    """The server's tool sources by id."""

    def __init__(self, entries: Iterable[tuple[ToolSource, Approval, float]]) -> None:
        self._entries = {
            source.id: _Entry(source, approval, timeout) for source, approval, timeout in entries
        }

    @classmethod
    def build(cls, configs: Sequence[ToolConfig]) -> Toolbox:
        """Sources for the built-in tools and each entry; a bad Python entry is a ConfigError."""
        entries: list[tuple[ToolSource, Approval, float]] = [
            (BuiltinSource(), "auto", BUILTIN_TIMEOUT_S)
        ]
        for config in configs:
            source: ToolSource = (
                PythonSource(config) if config.kind == "python" else MCPSource(config)
            )
            entries.append((source, config.approval, config.timeout_s))
        return cls(entries)

    def source(self, source_id: str) -> ToolSource | None:
        entry = self._entries.get(source_id)
        return entry.source if entry is not None else None

    def for_model(self, source_ids: Sequence[str]) -> ToolSet:
        """The tools of the named entries as they are now (unknown ids offer nothing)."""
        bound: list[BoundTool] = []
        for source_id in source_ids:
            entry = self._entries.get(source_id)
            if entry is None:
                continue
            for tool in entry.source.tools():
                bound.append(BoundTool(tool, source_id, entry.approval, entry.timeout_s))
        return ToolSet(bound)

    async def start(self) -> None:
        """Start every source together (MCP servers connect in the background)."""
        await asyncio.gather(*(entry.source.start() for entry in self._entries.values()))

    async def aclose(self) -> None:
        await asyncio.gather(*(entry.source.aclose() for entry in self._entries.values()))
