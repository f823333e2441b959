"""MCP tool sources against a real MCP server (tests/fakes/mcp_server.py, the SDK's server side),
over stdio (a subprocess) and streamable HTTP (a subprocess on a loopback port)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rtserver.config import ToolConfig
from rtserver.tools.base import ToolError, ToolSpec
from rtserver.tools.mcp import MCPSource, MCPTool
from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "tests.fakes.mcp_server"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    path = tmp_path / "marks"
    path.mkdir()
    return path


@pytest.fixture
def http_server(marks: Path) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [*SERVER, "http", str(marks), str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        # Uvicorn waits for open streams on SIGTERM; a client may still hold one.
        process.kill()
        process.wait(timeout=10)


def stdio_config(marks: Path, **overrides: object) -> ToolConfig:
    fields: dict[str, object] = {
        "id": "local",
        "kind": "mcp",
        "command": [*SERVER, "stdio", str(marks)],
        # The subprocess imports tests.fakes from the repository.
        "env": {"PYTHONPATH": str(ROOT)},
        "timeout_s": 10.0,
    }
    fields.update(overrides)
    return ToolConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def stdio_source(marks: Path) -> AsyncIterator[MCPSource]:
    source = MCPSource(stdio_config(marks))
    await source.start()
    yield source
    await source.aclose()


async def _http_source(url: str, **overrides: object) -> MCPSource:
    fields: dict[str, object] = {"id": "remote", "kind": "mcp", "url": url, "timeout_s": 10.0}
    fields.update(overrides)
    source = MCPSource(ToolConfig(**fields))  # type: ignore[arg-type]
    await source.start()
    # The HTTP server may still be starting: the supervisor retries until it answers.
    await eventually(lambda: source.connections > 0, timeout=20)
    return source


def _started(marks: Path) -> set[str]:
    """The server processes started so far, by the marks they left."""
    return {p.name for p in marks.glob("started-*")}


async def _call(source: MCPSource, name: str, args: dict[str, object]) -> str:
    tool = next(tool for tool in source.tools() if tool.spec.name == name)
    return await tool.call(args)


async def test_a_stdio_server_lists_its_tools_with_their_schemas(stdio_source: MCPSource) -> None:
    names = {tool.spec.name for tool in stdio_source.tools()}
    assert {"add", "shout", "fail", "hang", "die", "grow"} <= names
    add = next(tool for tool in stdio_source.tools() if tool.spec.name == "add")
    assert add.spec.description == "Add two integers."
    assert add.spec.parameters["required"] == ["a", "b"]


async def test_a_stdio_tool_is_called_and_its_text_comes_back(stdio_source: MCPSource) -> None:
    assert await _call(stdio_source, "add", {"a": 17, "b": 25}) == "42"
    assert await _call(stdio_source, "shout", {"text": "héllo 🙂"}) == "HÉLLO 🙂"


async def test_a_tool_error_is_a_failed_call_with_the_servers_report(
    stdio_source: MCPSource,
) -> None:
    with pytest.raises(ToolError) as failed:
        await _call(stdio_source, "fail", {})
    assert failed.value.code == "failed"
    assert "the disk is on fire" in failed.value.message


async def test_expose_offers_only_the_named_tools(marks: Path) -> None:
    source = MCPSource(stdio_config(marks, expose=["add", "nonexistent"]))
    await source.start()
    try:
        assert [tool.spec.name for tool in source.tools()] == ["add"]
    finally:
        await source.aclose()


async def test_cancelling_a_call_tells_the_server(stdio_source: MCPSource, marks: Path) -> None:
    call = asyncio.create_task(_call(stdio_source, "hang", {}))
    await eventually(lambda: (marks / "called-hang").exists())
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # The SDK sent notifications/cancelled, and the server's handler was cancelled.
    await eventually(lambda: (marks / "cancelled-hang").exists())
    # The connection carries on.
    assert await _call(stdio_source, "add", {"a": 1, "b": 2}) == "3"


async def test_a_server_that_dies_mid_call_fails_the_call_and_is_restarted(
    stdio_source: MCPSource, marks: Path
) -> None:
    first = _started(marks)
    with pytest.raises(ToolError) as failed:
        await _call(stdio_source, "die", {})
    assert failed.value.code == "failed"
    assert "stopped" in failed.value.message
    await eventually(lambda: stdio_source.connections == 2, timeout=20)
    assert _started(marks) - first, "a new process was started"
    assert await _call(stdio_source, "add", {"a": 2, "b": 2}) == "4"


async def test_the_tool_list_is_refreshed_when_the_server_announces_a_change(
    stdio_source: MCPSource,
) -> None:
    assert "echo" not in {tool.spec.name for tool in stdio_source.tools()}
    assert await _call(stdio_source, "grow", {}) == "grown"
    await eventually(lambda: "echo" in {tool.spec.name for tool in stdio_source.tools()})
    assert await _call(stdio_source, "echo", {"text": "again"}) == "again"


async def test_a_command_that_cannot_start_offers_no_tools_and_does_not_stop_the_app(
    tmp_path: Path,
) -> None:
    config = ToolConfig(
        id="missing", kind="mcp", command=[str(tmp_path / "no-such-server")], timeout_s=2.0
    )
    source = MCPSource(config)
    await source.start()
    try:
        assert list(source.tools()) == []
        assert source.connections == 0
    finally:
        await source.aclose()


async def test_an_http_server_is_called_over_streamable_http(http_server: str) -> None:
    source = await _http_source(http_server)
    try:
        assert await _call(source, "add", {"a": 40, "b": 2}) == "42"
        with pytest.raises(ToolError):
            await _call(source, "fail", {})
    finally:
        await source.aclose()


async def test_cancelling_an_http_call_tells_the_server(http_server: str, marks: Path) -> None:
    source = await _http_source(http_server)
    try:
        call = asyncio.create_task(_call(source, "hang", {}))
        await eventually(lambda: (marks / "called-hang").exists())
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await eventually(lambda: (marks / "cancelled-hang").exists())
        assert await _call(source, "add", {"a": 1, "b": 1}) == "2"
    finally:
        await source.aclose()


async def test_an_http_tool_list_change_is_seen(http_server: str) -> None:
    source = await _http_source(http_server, expose=None)
    try:
        await _call(source, "grow", {})
        await eventually(lambda: "echo" in {tool.spec.name for tool in source.tools()})
    finally:
        await source.aclose()


async def test_a_call_while_the_server_cannot_run_fails_saying_so() -> None:
    config = ToolConfig(id="gone", kind="mcp", url="http://127.0.0.1:9/mcp", timeout_s=0.5)
    source = MCPSource(config)
    await source.start()
    try:
        tool = MCPTool(source, ToolSpec(name="x", description=""))
        with pytest.raises(ToolError) as failed:
            await tool.call({})
        assert failed.value.message == "the tool server is not running"
    finally:
        await source.aclose()
