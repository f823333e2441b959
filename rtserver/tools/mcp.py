"""MCP servers as tool sources, through the official ``mcp`` SDK's client.

One supervisor task per ``[[tools]] kind = "mcp"`` entry holds the connection: it starts the
stdio ``command`` (or connects to the streamable HTTP ``url``), lists the tools, and then waits
until the connection is lost, when it connects again after a pause that doubles up to a minute
(reset once a connection has lasted). A lost connection shows as a call failing with
``Connection closed``, or, on a 2026-07-28 connection, as the ``subscriptions/listen`` stream
dropping. ``notifications/tools/list_changed`` (delivered to the message handler on both
protocol generations) makes it list the tools again.

Calls run in the caller's task: cancelling it abandons the request, and the SDK then sends the
server ``notifications/cancelled``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack, suppress

import mcp_types
from mcp import Client, StdioServerParameters
from mcp.client import Transport
from mcp.client.session import IncomingMessage
from mcp.client.stdio import stdio_client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from rtserver.config import ToolConfig
from rtserver.tools.base import Tool, ToolError, ToolSpec

log = logging.getLogger(__name__)
#: Names a vendor API accepts for a function; a server's tool with another name is not offered.
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Characters of a tool's description passed on to models.
MAX_DESCRIPTION_CHARS = 4000
#: Pauses between reconnects: the first, the longest, and how long a connection must have lasted
#: for the next failure to start again from the first.
RESTART_FIRST_S = 0.25
RESTART_MAX_S = 60.0
RESTART_RESET_AFTER_S = 30.0
#: Seconds a call waits for a connection being made (a restart after the server stopped).
CONNECT_WAIT_S = 5.0
#: Pages of ``tools/list`` read at most, so that a server whose cursor never ends cannot hang.
MAX_LIST_PAGES = 100


class MCPTool:
    """One tool of an MCP server."""

    def __init__(self, source: MCPSource, spec: ToolSpec) -> None:
        self._source = source
        self._spec = spec

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def call(self, args: Mapping[str, object]) -> str:
        client = await self._source.connected()
        try:
            result = await client.call_tool(self._spec.name, dict(args))
        except MCPError as exc:
            if exc.code == mcp_types.CONNECTION_CLOSED:
                self._source.lost()
                raise ToolError("failed", "the tool server stopped during the call") from None
            raise ToolError("failed", f"the tool server answered error {exc.code}") from None
        text = content_text(result.content, result.structured_content)
        if result.is_error:
            raise ToolError("failed", text or "the tool reported an error")
        return text


def content_text(
    content: Sequence[mcp_types.ContentBlock], structured: Mapping[str, object] | None
) -> str:
    """A tool result's content as text: its text blocks, and a note for each other block."""
    parts: list[str] = []
    for block in content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            parts.append(f"[{block.mime_type} content]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[resource {block.uri}]")
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[resource {resource.uri}]")
    if not parts and structured is not None:
        return json.dumps(structured, ensure_ascii=False)
    return "\n".join(parts)


def _innermost(exc: BaseException) -> BaseException:
    """The first error inside the task groups the SDK wraps its failures in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class MCPSource:
    """A ``kind = "mcp"`` entry: the tools of one MCP server, kept connected."""

    def __init__(self, config: ToolConfig) -> None:
        self._config = config
        self._tools: tuple[MCPTool, ...] = ()
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self._changed = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Connections made so far; tests and the log read it.
        self.connections = 0

    @property
    def id(self) -> str:
        return self._config.id

    def tools(self) -> Sequence[Tool]:
        return self._tools

    async def start(self) -> None:
        """Connect in the background; wait (bounded) for the first attempt to end."""
        self._task = asyncio.create_task(self._supervise(), name=f"mcp {self.id}")
        with suppress(TimeoutError):
            async with asyncio.timeout(self._config.timeout_s):
                await self._first_attempt.wait()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def connected(self) -> Client:
        """The live client, waiting (a little) for a reconnect if one is under way."""
        try:
            async with asyncio.timeout(min(CONNECT_WAIT_S, self._config.timeout_s)):
                await self._ready.wait()
        except TimeoutError:
            raise ToolError("failed", "the tool server is not running") from None
        assert self._client is not None
        return self._client

    def lost(self) -> None:
        """Tell the supervisor that the connection is gone."""
        self._lost.set()

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        pause = RESTART_FIRST_S
        while True:
            began = loop.time()
            try:
                await self._connection()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # SDK and transport errors describe the server, never a peer: the log may
                # have them.
                cause = _innermost(exc)
                log.warning("MCP server %r: %s: %s", self.id, type(cause).__name__, cause)
            finally:
                self._ready.clear()
                self._client = None
                self._first_attempt.set()
            if loop.time() - began > RESTART_RESET_AFTER_S:
                pause = RESTART_FIRST_S
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESTART_MAX_S)

    def _server(self) -> Transport | str:
        config = self._config
        if config.command is not None:
            params = StdioServerParameters(
                command=config.command[0], args=config.command[1:], env=config.env
            )
            # The server's stderr goes to ours as it is now: the SDK's default is the
            # sys.stderr of when it was imported, which may have been closed since.
            return stdio_client(params, errlog=sys.stderr)
        assert config.url is not None
        return config.url

    async def _connection(self) -> None:
        self._lost.clear()
        async with AsyncExitStack() as stack:
            async with asyncio.timeout(self._config.timeout_s):
                client = await stack.enter_async_context(
                    Client(self._server(), message_handler=self._on_message, cache=None)
                )
                await self._list(client)
            self.connections += 1
            log.info("MCP server %r connected: %d tools", self.id, len(self._tools))
            self._client = client
            self._ready.set()
            self._first_attempt.set()
            watchers = [asyncio.create_task(self._refresher(client))]
            if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                watchers.append(asyncio.create_task(self._listen(client)))
            try:
                await self._lost.wait()
            finally:
                self._ready.clear()
                for watcher in watchers:
                    watcher.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
        log.info("MCP server %r: connection lost; connecting again", self.id)

    async def _on_message(self, message: IncomingMessage) -> None:
        # Runs inside the SDK's read loop: it only flags the change, the refresher lists.
        if isinstance(message, mcp_types.ToolListChangedNotification):
            self._changed.set()

    async def _refresher(self, client: Client) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._list(client)
            except MCPError as exc:
                if exc.code == mcp_types.CONNECTION_CLOSED:
                    self.lost()
                    return
                log.warning("MCP server %r: listing tools failed: %s", self.id, exc.code)

    async def _listen(self, client: Client) -> None:
        """Subscribe to list changes; the subscription's end is a lost connection."""
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                async for _event in subscription:
                    # The same change also reaches the message handler, which flags it.
                    self._changed.set()
        except (SubscriptionLost, MCPError):
            self.lost()

    async def _list(self, client: Client) -> None:
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        self._tools = tuple(self._offered(tools))

    def _offered(self, tools: Sequence[mcp_types.Tool]) -> list[MCPTool]:
        expose = self._config.expose
        offered: list[MCPTool] = []
        for tool in tools:
            if expose is not None and tool.name not in expose:
                continue
            if not _TOOL_NAME.match(tool.name):
                log.warning(
                    "MCP server %r: tool %r has a name models cannot call", self.id, tool.name
                )
                continue
            spec = ToolSpec(
                name=tool.name,
                description=(tool.description or "")[:MAX_DESCRIPTION_CHARS],
                parameters=dict(tool.input_schema),
            )
            offered.append(MCPTool(self, spec))
        if expose is not None:
            missing = set(expose) - {tool.name for tool in tools}
            if missing:
                log.warning("MCP server %r lists none of %s", self.id, ", ".join(sorted(missing)))
        return offered
