"""The load generator end to end against the bare peer: whole runs pass, a faulty server fails.

Not a benchmark: a handful of participants and tokens, no timing asserted.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from benchmarks.loadgen import Spec, execute
from benchmarks.peers import FEED, SOCKETS, Feed, Frame, bare_app

Fault = Callable[[int, int, bytes], list[bytes]]
PARTICIPANTS, TURNS, TOKENS = 4, 2, 10


def _faulty_app(fault: Fault) -> web.Application:
    """The bare peer, with ``fault(socket index, frame number, frame)`` choosing what is sent."""
    app = bare_app()
    sockets = app[SOCKETS]
    sent = [0]

    async def send_all(frame: Frame) -> None:
        sent[0] += 1
        data = msgspec.json.encode(frame)
        # Only the first socket gets the fault; the others see a faithful server.
        for index, ws in enumerate(sorted(sockets, key=id)):
            for out in fault(index, sent[0], data) if index == 0 else [data]:
                await ws.send_frame(out, WSMsgType.TEXT)

    app[FEED] = Feed(send_all)
    return app


@pytest.fixture
async def start_peer() -> AsyncIterator[Callable[[Fault], Awaitable[Spec]]]:
    servers: list[TestServer] = []

    async def start(fault: Fault) -> Spec:
        server = TestServer(_faulty_app(fault), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        assert server.port is not None
        return Spec(
            kind="bare",
            port=server.port,
            server_pid=os.getpid(),
            mode="stream",
            participants=PARTICIPANTS,
            turns=TURNS,
            tokens=TOKENS,
            join_timeout_s=20,
            run_timeout_s=20,
        )

    yield start
    for server in servers:
        await server.close()


def _faithful(index: int, number: int, data: bytes) -> list[bytes]:
    return [data]


async def test_a_whole_run_passes_with_every_frame_counted(
    start_peer: Callable[[Fault], Awaitable[Spec]],
) -> None:
    result = await execute(await start_peer(_faithful))
    assert result.ok, result.error
    assert result.figures["token_frames"] == PARTICIPANTS * TURNS * TOKENS
    assert result.figures["tokens"] == PARTICIPANTS * TURNS * TOKENS


def _drop_fifth(index: int, number: int, data: bytes) -> list[bytes]:
    return [] if number == 5 else [data]


def _repeat_fifth(index: int, number: int, data: bytes) -> list[bytes]:
    return [data, data] if number == 5 else [data]


_previous: dict[int, bytes] = {}


def _swap_fourth_and_fifth(index: int, number: int, data: bytes) -> list[bytes]:
    if number == 4:
        _previous[index] = data
        return []
    if number == 5:
        return [data, _previous.pop(index)]
    return [data]


@pytest.mark.parametrize(
    ("fault", "reported"),
    [
        (_drop_fifth, "expected seq 5, got 6 (missing frame)"),
        (_repeat_fifth, "expected seq 6, got 5 (duplicate or reordered frame)"),
        (_swap_fourth_and_fifth, "expected seq 4, got 5 (missing frame)"),
    ],
)
async def test_a_missing_duplicated_or_reordered_frame_to_one_participant_fails_the_run(
    start_peer: Callable[[Fault], Awaitable[Spec]], fault: Fault, reported: str
) -> None:
    result = await execute(await start_peer(fault))
    assert not result.ok
    assert result.error is not None
    assert reported in result.error
    assert result.figures == {}
