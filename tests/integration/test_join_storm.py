"""A join storm of 5,000 WebSockets into one room: all join, all hear of all, and all receive
the room's next stream whole and in order; a bystander in another room is served all along.

Timing figures are the benchmark's (benchmarks/joinstorm.py): this test asserts outcomes only.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from benchmarks.joinstorm import REPLY_TOKENS, raise_open_files, run_storm, storm_settings
from tests.conftest import ServerFactory

PARTICIPANTS = 5_000


@pytest.mark.timeout(300)
async def test_five_thousand_join_at_once_and_receive_every_token(
    start_server: ServerFactory, db_path: str
) -> None:
    needed = PARTICIPANTS * 2 + 256  # both ends of every socket live in this process
    assert raise_open_files(needed) >= needed, "the hard limit of open files is too low"
    server: TestServer = await start_server(storm_settings(db_path))
    report = await run_storm(server.make_url("/"), PARTICIPANTS, concurrency=100, baseline_s=0)
    # run_storm checked every participant's events (seq order, none lost, the stored reply).
    assert report.token_frames == PARTICIPANTS * REPLY_TOKENS
    assert report.storm_round_trips, "the other room's pings were answered during the storm"
