"""A small MCP server written with the ``mcp`` SDK's server side, run by the tests.

``python -m tests.fakes.mcp_server stdio MARKS`` serves over stdin/stdout;
``python -m tests.fakes.mcp_server http MARKS PORT`` serves streamable HTTP on loopback ``PORT``.
``MARKS`` is a directory where the server leaves files the tests wait for: ``started-<pid>`` when
it starts, ``cancelled-<tool>`` when a call is cancelled, ``called-<tool>`` when one begins.

Tools: ``add`` (two integers), ``shout`` (upper-cases text), ``fail`` (reports an error),
``huge`` (a long result), ``hang`` (never returns, until cancelled), ``die`` (ends the process
mid-call), ``grow`` (adds a tool ``echo`` and announces the change).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("rtserver-test-tools", log_level="CRITICAL")
MARKS = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(".")


def mark(name: str) -> None:
    (MARKS / name).write_text(str(os.getpid()))


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
def shout(text: str) -> str:
    """Return the text in capitals."""
    return text.upper()


@server.tool()
def fail() -> str:
    """Always fails, saying why."""
    raise ToolError("the disk is on fire")


@server.tool()
def huge(size: int) -> str:
    """Return ``size`` characters."""
    return "x" * size


@server.tool()
async def hang() -> str:
    """Wait forever (until the call is cancelled)."""
    mark("called-hang")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        mark("cancelled-hang")
        raise
    return "never"


@server.tool()
def die() -> str:
    """End the server in the middle of the call."""
    os._exit(3)


def echo(text: str) -> str:
    """Return the text as it is."""
    return text


@server.tool()
async def grow(ctx: Context) -> str:
    """Add the tool ``echo`` and tell the client the list changed."""
    server.add_tool(echo)
    # Both protocol generations: the 2026 subscription, and the older notification.
    await ctx.notify_tools_changed()
    await ctx.request_context.session.send_tool_list_changed()
    return "grown"


def main() -> None:
    mark(f"started-{os.getpid()}")
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[3]))


if __name__ == "__main__":
    main()
