"""The plain HTTP API: /v1/models, the bounds of history paging, Retry-After rounding."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.errors import PeerError
from rtserver.transports.http import error_response


async def test_models_lists_every_model_and_the_defaults(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.make_url("/v1/models")) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        body = await response.json()
    assert body == {
        "models": [
            {"id": "slow", "label": "slow", "provider": "demo", "simulated": True, "default": True},
            {"id": "quick", "label": "quick", "provider": "demo", "simulated": True},
        ],
        "defaults": ["slow"],
    }


@pytest.mark.parametrize(("limit", "status"), [("1", 200), ("200", 200), ("0", 400), ("201", 400)])
async def test_history_page_sizes_run_from_1_to_200(
    server: TestServer, http: aiohttp.ClientSession, limit: str, status: int
) -> None:
    async with http.get(server.make_url(f"/v1/rooms/r/messages?limit={limit}")) as response:
        assert response.status == status
        body = await response.json()
    if status == 200:
        assert body == {"messages": [], "next": None}
    else:
        assert body["message"] == "limit must be a whole number from 1 to 200"


@pytest.mark.parametrize(("retry_after", "header"), [(0.2, "1"), (1.0, "1"), (2.1, "3")])
def test_retry_after_is_whole_seconds_rounded_up(retry_after: float, header: str) -> None:
    response = error_response(PeerError("rate_limited", "wait", retry_after=retry_after))
    assert response.status == 429
    assert response.headers["Retry-After"] == header


def test_an_error_without_retry_after_has_no_header() -> None:
    response = error_response(PeerError("busy", "later"))
    assert response.status == 503
    assert "Retry-After" not in response.headers
