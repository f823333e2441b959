"""The plain HTTP API: models, message history, errors as JSON, CORS."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from rtserver.budgets import newest_within
from rtserver.directory import check_room_id
from rtserver.errors import HTTP_STATUS, PeerError
from rtserver.keys import CATALOG, SETTINGS, STORE

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode
MAX_PAGE = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: object, *, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


def error_response(error: PeerError) -> web.Response:
    """An error frame as the body, with the status its code maps to."""
    response = json_response(error.to_frame(), status=HTTP_STATUS[error.code])
    if error.retry_after is not None:
        # Whole seconds, rounded up so that a client waiting that long is not early.
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return response


def ascii_digits(text: str) -> bool:
    """True when ``text`` is only 0-9 (``str.isdigit`` also takes "²", which int() refuses)."""
    return text.isascii() and text.isdigit()


def room_id_or_400(request: web.Request) -> str:
    """The request's room id; a bad one raises ``bad_frame``, which answers 400."""
    return check_room_id(request.match_info["room"])


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn PeerErrors into JSON errors and let any origin call the API (CORS).

    The static files are open to any origin too, so that a page elsewhere can import the
    client module, not only load the widget's classic script.
    """
    api = request.path.startswith("/v1/")
    shared = api or request.path.startswith("/static/")
    if api and request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = (
            "Content-Type, X-RT-Session, Last-Event-ID"
        )
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        try:
            response = await handler(request)
        except PeerError as exc:
            response = error_response(exc)
        except web.HTTPException:
            raise
        except Exception:
            if request.writer.output_size > 0:
                raise  # a stream already under way: aiohttp can only cut it
            # Answered like every other error, as JSON with CORS, never with its text.
            log.exception("%s %s failed", request.method, request.path)
            response = error_response(PeerError("internal", "the server failed on this request"))
    if shared and not response.prepared:
        allow_any_origin(response)
    return response


def allow_any_origin(response: web.StreamResponse) -> None:
    """Let pages of any origin read ``response`` (set before a streamed response is prepared)."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    # Scripts see only safelisted response headers unless told; a 429's Retry-After matters.
    response.headers["Access-Control-Expose-Headers"] = "Retry-After"


async def models_handler(request: web.Request) -> web.Response:
    """``GET /v1/models``."""
    catalog = request.app[CATALOG]
    return json_response({"models": catalog.infos, "defaults": list(catalog.defaults)})


async def messages_handler(request: web.Request) -> web.Response:
    """``GET /v1/rooms/{room}/messages?limit=N&before=<message id>``."""
    room_id = room_id_or_400(request)
    raw_limit = request.query.get("limit", "50")
    if not ascii_digits(raw_limit) or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise PeerError("bad_frame", f"limit must be a whole number from 1 to {MAX_PAGE}")
    before = request.query.get("before") or None
    messages, next_before = await request.app[STORE].page(
        room_id, limit=int(raw_limit), before=before
    )
    # A page holds at most history_page_chars of text: the oldest messages that do not fit
    # are left for the next page, which then starts at the oldest one kept.
    budget = request.app[SETTINGS].limits.history_page_chars
    kept = newest_within(messages, budget, keep_newest=True)
    if len(kept) < len(messages):
        next_before = kept[0].id
    return json_response({"messages": kept, "next": next_before})
