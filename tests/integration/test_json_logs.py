"""`rtserver serve --log-format json`: every line is a JSON object; the ids are fields."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from rtserver.client import RoomState, connect
from rtserver.ops.logging import JsonFormatter, bind
from rtserver.protocol.frames import StreamEnd


def free_port() -> int:
    """A port the OS hands out (bound to port 0, then released for the server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_json_log_lines_parse_and_carry_room_participant_and_stream(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtserver",
        "serve",
        "--port",
        str(port),
        "--db",
        str(tmp_path / "logs.db"),
        "--log-format",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), timeout=20)
        assert b"serving on" in line
        async with connect(f"http://127.0.0.1:{port}", "logged", name="ada") as room:
            state = RoomState()
            await room.prompt("hello", models=["demo-fast"])
            async with asyncio.timeout(20):
                async for event in room:
                    state.apply(event)
                    if isinstance(event, StreamEnd):
                        break
            participant = room.welcome.participant.id if room.welcome else ""
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(server.communicate(), timeout=20)

    lines = [json.loads(raw) for raw in err.decode().splitlines() if raw.strip()]
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    joined = next(line for line in lines if line["message"] == "joined")
    assert joined["room"] == "logged"
    assert joined["participant"] == participant
    [reply] = state.lanes().values()
    ended = next(line for line in lines if line["message"] == "stream ended")
    assert ended["stream"] == reply.stream
    assert ended["room"] == "logged"
    assert ended["model"] == "demo-fast"
    assert ended["reason"] == "complete"
    closed = next(line for line in lines if line["message"] == "connection closed")
    assert closed["participant"] == participant
    assert closed["code"] == 1000


def test_the_formatter_keeps_exceptions_and_hostile_text_on_one_line() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, 'quote " and\nnewline %s', ("arg",), sys.exc_info()
        )

    def in_a_room() -> str:
        bind(room="r1")
        return formatter.format(record)

    # In a copy of the context, so the id does not stay bound for other tests.
    line = contextvars.copy_context().run(in_a_room)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    assert parsed["message"] == 'quote " and\nnewline arg'
    assert parsed["room"] == "r1"
    assert "ValueError: bad" in parsed["exception"]
