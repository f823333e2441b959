"""Errors that aiohttp raises itself (no such route, wrong method, ...) answered as JSON.

Every error a client can get is an ``error`` frame, whichever layer found it: a client that
parses our errors never meets an HTML or plain-text page. The words are ours, not aiohttp's.
"""

from __future__ import annotations

from collections.abc import Awaitable
from http import HTTPStatus
from typing import Final

from aiohttp import web

from rtserver.errors import PeerError
from rtserver.protocol.frames import ErrorCode, ErrorFrame
from rtserver.transports.http import (
    Handler,
    error_response,
    internal_error,
    json_response,
    with_api_headers,
)
from rtserver.transports.upgrade import is_upgrade

#: Our error code for each HTTP status that aiohttp raises; any other 4xx is ``bad_frame``.
_CODE_OF_STATUS: Final[dict[int, ErrorCode]] = {
    403: "forbidden",
    404: "not_found",
    413: "too_large",
    429: "rate_limited",
    503: "busy",
}
#: Headers of aiohttp's answer that a client needs (which methods are allowed, when to retry).
_KEPT_HEADERS: Final = ("Allow", "Retry-After")


@web.middleware
def json_http_errors(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Turn aiohttp's own HTTP errors (status 400 and up) into ``error`` frames.

    An upgrade route is handed on unawaited: it answers its own (see :func:`refusal`).
    """
    if is_upgrade(request):
        return handler(request)
    return _json_http_errors(request, handler)


async def _json_http_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _as_json(request, exc)


def refusal(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The answer the API middlewares give to ``exc``, for an upgrade route before it upgrades.

    Call it where ``exc`` is caught: an unexpected failure is logged with its traceback. One
    that struck once the response was under way is raised again, for aiohttp to cut.
    """
    if request.writer.output_size > 0:
        raise exc
    if isinstance(exc, PeerError):
        response = error_response(exc)
    elif isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        response = _as_json(request, exc)
    else:
        response = internal_error(request)
    return with_api_headers(request, response)


def _as_json(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    code: ErrorCode = _CODE_OF_STATUS.get(status, "bad_frame" if status < 500 else "internal")
    response = json_response(ErrorFrame(code=code, message=_message(request, exc)), status=status)
    for name in _KEPT_HEADERS:
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


def _message(request: web.Request, exc: web.HTTPException) -> str:
    target = f"{request.method} {request.path}"[:200]
    if exc.status == 404:
        return f"no such endpoint or file: {target}"
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        return f"{request.method[:20]} is not allowed on {request.path[:180]}; allowed: {allowed}"
    if exc.status >= 500:
        return "the server failed on this request"
    try:
        phrase = HTTPStatus(exc.status).phrase
    except ValueError:
        phrase = "refused"
    return f"the request {target} was refused: {exc.status} {phrase}"
