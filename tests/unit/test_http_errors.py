"""aiohttp's own HTTP errors, and failures before an upgrade, answered as JSON error frames."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from rtserver.auth.origins import OriginPolicy
from rtserver.errors import PeerError
from rtserver.keys import ORIGINS
from rtserver.transports.http_errors import _json_http_errors, refusal

PAGE = "https://app.example.com"


def request(method: str = "GET", path: str = "/v1/things", *, sent: int = 0) -> web.Request:
    app = web.Application()
    app[ORIGINS] = OriginPolicy(allowed=(PAGE,), any_host_name=False)
    return make_mocked_request(
        method, path, headers={"Origin": PAGE}, app=app, writer=SimpleNamespace(output_size=sent)
    )


def body(response: web.StreamResponse) -> dict[str, Any]:
    assert isinstance(response, web.Response)
    assert response.content_type == "application/json"
    assert isinstance(response.body, bytes)
    frame: dict[str, Any] = json.loads(response.body)
    return frame


async def answer(exc: Exception, req: web.Request | None = None) -> web.StreamResponse:
    async def handler(_: web.Request) -> web.StreamResponse:
        raise exc

    return await _json_http_errors(req or request(), handler)


async def test_no_such_route_is_not_found_naming_the_request() -> None:
    response = await answer(web.HTTPNotFound())
    assert response.status == 404
    assert body(response) == {
        "type": "error",
        "code": "not_found",
        "message": "no such endpoint or file: GET /v1/things",
    }


async def test_a_long_target_is_cut_to_200_characters() -> None:
    path = "/" + "a" * 300
    response = await answer(web.HTTPNotFound(), request(path=path))
    assert body(response)["message"] == "no such endpoint or file: " + f"GET {path}"[:200]


async def test_a_wrong_method_names_the_allowed_ones_and_keeps_allow() -> None:
    exc = web.HTTPMethodNotAllowed("DELETE", ["GET", "HEAD"])
    response = await answer(exc, request("DELETE", "/v1/models"))
    assert response.status == 405
    assert response.headers["Allow"] == exc.headers["Allow"]
    assert body(response) == {
        "type": "error",
        "code": "bad_frame",
        "message": f"DELETE is not allowed on /v1/models; allowed: {exc.headers['Allow']}",
    }


async def test_a_wrong_methods_name_and_path_are_cut() -> None:
    method, path = "M" * 30, "/" + "p" * 300
    exc = web.HTTPMethodNotAllowed(method, ["GET"])
    response = await answer(exc, request(method, path))
    message = body(response)["message"]
    assert message == f"{method[:20]} is not allowed on {path[:180]}; allowed: GET"


async def test_a_wrong_method_with_no_allow_header_allows_nothing() -> None:
    exc = web.HTTPMethodNotAllowed("PUT", [])
    del exc.headers["Allow"]
    message = body(await answer(exc, request("PUT", "/v1/models")))["message"]
    assert message == "PUT is not allowed on /v1/models; allowed: "


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (web.HTTPBadRequest(), "bad_frame"),
        (web.HTTPForbidden(), "forbidden"),
        (web.HTTPRequestEntityTooLarge(max_size=10, actual_size=20), "too_large"),
        (web.HTTPTooManyRequests(), "rate_limited"),
        (web.HTTPUnavailableForLegalReasons(link=None), "bad_frame"),
        (web.HTTPInternalServerError(), "internal"),
        (web.HTTPNotImplemented(), "internal"),
        (web.HTTPServiceUnavailable(), "busy"),
    ],
)
async def test_each_status_has_its_code(exc: web.HTTPException, code: str) -> None:
    response = await answer(exc)
    assert (response.status, body(response)["code"]) == (exc.status, code)


async def test_another_refusal_names_its_status_and_phrase() -> None:
    message = body(await answer(web.HTTPRequestEntityTooLarge(max_size=1, actual_size=2)))
    assert (
        message["message"] == "the request GET /v1/things was refused: 413 Request Entity Too Large"
    )


async def test_a_status_without_a_name_is_refused_by_number() -> None:
    class Odd(web.HTTPClientError):
        status_code = 499

    message = body(await answer(Odd()))["message"]
    assert message == "the request GET /v1/things was refused: 499 refused"


@pytest.mark.parametrize("exc", [web.HTTPInternalServerError(), web.HTTPBadGateway()])
async def test_a_server_error_says_only_that_the_server_failed(exc: web.HTTPException) -> None:
    assert body(await answer(exc))["message"] == "the server failed on this request"


async def test_a_retry_after_is_kept() -> None:
    response = await answer(web.HTTPServiceUnavailable(headers={"Retry-After": "7"}))
    assert response.headers["Retry-After"] == "7"


async def test_what_is_not_an_error_is_raised_on() -> None:
    with pytest.raises(web.HTTPFound):
        await answer(web.HTTPFound("/elsewhere"))


# --- refusal: the same answers, for an upgrade route before it upgrades ---------------------


def test_a_refusal_of_a_peer_error_is_its_frame_with_the_apis_headers() -> None:
    req = request(path="/v1/rooms/r/ws")
    response = refusal(req, PeerError("rate_limited", "slow down", retry_after=2.5))
    assert response.status == 429
    assert body(response) == {
        "type": "error",
        "code": "rate_limited",
        "message": "slow down",
        "retry_after": 2.5,
    }
    assert response.headers["Retry-After"] == "3"
    assert response.headers["Access-Control-Allow-Origin"] == PAGE


def test_a_refusal_of_an_http_error_is_its_json_answer() -> None:
    response = refusal(request(path="/v1/rooms/r/ws"), web.HTTPNotFound())
    assert response.status == 404
    assert body(response)["message"] == "no such endpoint or file: GET /v1/rooms/r/ws"


def test_a_refusal_of_something_unexpected_is_internal_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        try:
            raise RuntimeError("secret detail")
        except RuntimeError as exc:  # where the caller catches it, as the handlers do
            response = refusal(request(path="/v1/rooms/r/ws"), exc)
    assert response.status == 500
    assert body(response) == {
        "type": "error",
        "code": "internal",
        "message": "the server failed on this request",
    }
    [record] = caplog.records
    assert record.getMessage() == "GET /v1/rooms/r/ws failed"
    assert record.exc_info is not None


def test_a_refusal_once_the_answer_is_under_way_raises_again() -> None:
    failure = RuntimeError("mid-answer")
    with pytest.raises(RuntimeError) as raised:
        refusal(request(sent=1), failure)
    assert raised.value is failure


def test_a_refusal_of_a_redirect_raises_it() -> None:
    with pytest.raises(web.HTTPFound):
        refusal(request(), web.HTTPFound("/elsewhere"))


def test_a_refusal_of_a_bad_request_is_its_json_answer() -> None:
    response = refusal(request(path="/v1/rooms/r/ws"), web.HTTPBadRequest())
    assert (response.status, body(response)["code"]) == (400, "bad_frame")
