"""The plain HTTP API: models, message history, errors as JSON, CORS."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from rtserver.auth.access import Identity
from rtserver.errors import HTTP_STATUS, PeerError
from rtserver.keys import ACCESS, CATALOG, CLIENT_LIMITS, ORIGINS, SETTINGS, STORE
from rtserver.room.cuts import newest_within
from rtserver.room.member import Seat
from rtserver.transports.upgrade import is_upgrade
from rtserver.turns.directory import check_room_id

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
    if error.code == "unauthorized":
        # What a 401 must say (RFC 9110): how to authenticate.
        response.headers["WWW-Authenticate"] = 'Bearer realm="rtserver"'
    return response


def ascii_digits(text: str) -> bool:
    """True when ``text`` is only 0-9 (``str.isdigit`` also takes "²", which int() refuses)."""
    return text.isascii() and text.isdigit()


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def identify(request: web.Request, *, room: str | None) -> Identity:
    """Who sends a plain HTTP request (its Bearer token), allowed into ``room`` if named."""
    return request.app[ACCESS].identify(request, bearer_token(request), room=room, connection=False)


def seat_for(request: web.Request, identity: Identity) -> Seat:
    """The seat in a room that ``identity`` joins as: its id, grant and shared quota."""
    return Seat(
        owner=identity.key,
        member_id=identity.participant_id,
        grant=identity.grant,
        quota=request.app[CLIENT_LIMITS].quota(identity.key),
    )


def room_id_or_400(request: web.Request) -> str:
    """The request's room id; a bad one raises ``bad_frame``, which answers 400."""
    return check_room_id(request.match_info["room"])


@web.middleware
def api_errors(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Turn PeerErrors into JSON errors; refuse pages of other origins; CORS for allowed ones.

    The static files are open to any origin: they are public code, and a page elsewhere may
    import the client module, not only load the widget's classic script. An upgrade route is
    checked here and handed on unawaited (see :mod:`rtserver.transports.upgrade`).
    """
    if not is_upgrade(request):
        return _api_errors(request, handler)
    try:
        # Before the handler, so before any WebSocket upgrade or side effect.
        check_page(request)
    except PeerError as exc:
        return _answered(with_api_headers(request, error_response(exc)))
    return handler(request)


async def _api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/v1/") and request.method == "OPTIONS":
        return with_api_headers(request, _preflight())
    try:
        check_page(request)
        response = await handler(request)
    except PeerError as exc:
        response = error_response(exc)
    except web.HTTPException:
        raise
    except Exception:
        if request.writer.output_size > 0:
            raise  # a stream already under way: aiohttp can only cut it
        response = internal_error(request)
    return with_api_headers(request, response)


def _preflight() -> web.Response:
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = (
        "Authorization, Content-Type, X-RT-Session, Last-Event-ID"
    )
    response.headers["Access-Control-Max-Age"] = "600"
    return response


async def _answered(response: web.StreamResponse) -> web.StreamResponse:
    """``response`` as the awaitable a middleware returns."""
    return response


def check_page(request: web.Request) -> None:
    """Raise ``forbidden`` for a ``Host`` not known safe, or an API call from a page not allowed."""
    request.app[ORIGINS].check_host(request)
    if request.path.startswith("/v1/"):
        request.app[ORIGINS].check(request)


def internal_error(request: web.Request) -> web.Response:
    """A handler's unexpected failure, logged and answered like every other error (as JSON)."""
    # Never with the exception's text: it may tell more than a client should know.
    log.exception("%s %s failed", request.method, request.path)
    return error_response(PeerError("internal", "the server failed on this request"))


def with_api_headers(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """CORS headers for an API answer, ``*`` for a static file; a sent response as it is."""
    if response.prepared:
        return response
    if request.path.startswith("/v1/"):
        allow_cors(request, response)
    elif request.path.startswith("/static/"):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def allow_cors(request: web.Request, response: web.StreamResponse) -> None:
    """Let the request's page read ``response`` if its origin is an allowed one.

    Set before a streamed response is prepared. The server's own pages need no CORS.
    """
    # The answer depends on Origin: caches must keep one per origin.
    response.headers["Vary"] = "Origin"
    origin = request.app[ORIGINS].cors_origin(request)
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    # Scripts see only safelisted response headers unless told; a 429's Retry-After matters.
    response.headers["Access-Control-Expose-Headers"] = "Retry-After"


async def models_handler(request: web.Request) -> web.Response:
    """``GET /v1/models``: needs no token, as it tells no more than a welcome's ``models``."""
    catalog = request.app[CATALOG]
    return json_response({"models": catalog.infos, "defaults": list(catalog.defaults)})


async def messages_handler(request: web.Request) -> web.Response:
    """``GET /v1/rooms/{room}/messages?limit=N&before=<message id>``."""
    room_id = room_id_or_400(request)
    request.app[CLIENT_LIMITS].history_page(identify(request, room=room_id).key)
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
