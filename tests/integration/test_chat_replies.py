"""``POST /v1/chat`` seen from outside: nesting refused, metrics kept, a vanished client."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from rtserver.config import ModelSpec
from tests.conftest import ServerFactory
from tests.integration.scripted_providers import Recording, Watched
from tests.support import eventually, fast_settings

QUICK = (ModelSpec(id="quick", provider="demo", tokens_per_s=400, first_token_s=0.01),)
TOO_DEEP = "the frame nests maps and arrays more than 32 levels deep"


@pytest.mark.parametrize("message", [b'"hi"', b"5"], ids=["valid-request", "invalid-request"])
async def test_a_body_nested_too_deep_is_refused_as_such(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession, message: bytes
) -> None:
    server = await start_server(fast_settings(db_path, models=QUICK))
    # An ignored field may not smuggle in what no frame may hold, valid request or not.
    body = b'{"message": ' + message + b', "pad": ' + b"[" * 40 + b"]" * 40 + b"}"
    async with http.post(
        server.make_url("/v1/chat"), data=body, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        error = await response.json()
    assert (error["code"], error["message"]) == ("bad_frame", TOO_DEEP)


def _sample(metrics: str, name: str) -> float | None:
    found = [line for line in metrics.splitlines() if line.startswith(name + " ")]
    return float(found[0].split()[1]) if found else None


async def test_a_chat_is_counted_under_its_model_in_the_metrics(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start_server(fast_settings(db_path, models=QUICK))
    async with http.post(server.make_url("/v1/chat"), json={"message": "hello"}) as response:
        assert response.status == 200
        reply = await response.json()
    assert (reply["model"], reply["reason"]) == ("quick", "complete")
    async with http.get(server.make_url("/metrics")) as response:
        metrics = await response.text()
    ended = 'rtserver_stream_ends_total{model="quick",reason="complete"}'
    assert _sample(metrics, ended) == 1.0


async def test_a_json_chat_whose_client_went_is_answered_204_without_an_error(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    # The model says nothing until released, which it never is: the client leaves first.
    held = Recording("late", release=asyncio.Event())
    watched = Watched(held)
    server = await start_server(fast_settings(db_path, models=QUICK), providers={"quick": watched})
    body = {"message": "take your time"}
    asking = asyncio.create_task(http.post(server.make_url("/v1/chat"), json=body))
    await eventually(lambda: len(held.requests) == 1)
    asking.cancel()  # closes the connection, as a client that gives up does
    with pytest.raises(asyncio.CancelledError):
        await asking
    await asyncio.wait_for(watched.closed.wait(), timeout=10)

    def answered() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "aiohttp.access" and "/v1/chat" in r.msg]

    # The access log records the answer once the handler has returned.
    await eventually(lambda: bool(answered()))
    [record] = answered()
    assert '" 204 ' in record.getMessage()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], "a client going away is not a failure of the server"
