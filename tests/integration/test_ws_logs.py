"""What a WebSocket connection tells the operator's JSON log when it ends."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.ops.logging import JsonFormatter
from tests.conftest import ws_url
from tests.support import RoomClient, eventually


class JsonLines(logging.Handler):
    """Each record as the JSON line ``--log-format json`` writes, formatted when it is logged.

    Formatted at once, in the task that logs it: the ids of the log context are that task's.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def ws_log() -> Iterator[JsonLines]:
    logger = logging.getLogger("rtserver.transports.ws")
    handler, level = JsonLines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_closed_connection_logs_its_room_participant_and_the_peers_close_code(
    server: TestServer, http: aiohttp.ClientSession, ws_log: JsonLines
) -> None:
    client = await RoomClient.connect(http, ws_url(server, "logged"), name="ada")
    participant = client.welcome["participant"]["id"]
    await client.ws.close(code=4321)

    def closed() -> list[dict[str, Any]]:
        return [line for line in ws_log.lines if line["message"] == "connection closed"]

    await eventually(lambda: bool(closed()))
    [line] = closed()
    assert (line["room"], line["participant"], line["code"]) == ("logged", participant, 4321)
    assert line["level"] == "INFO"
