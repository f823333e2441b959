"""Upgrade routes: handlers that hold their request for a connection's whole life.

Every coroutine frame between aiohttp and a WebSocket handler stays allocated for as long as
the socket is open, so at thousands of idle connections each middleware that awaits the
handler costs its frame once per connection. The API middlewares therefore hand an upgrade
route's request on without awaiting it: they make their checks (host, origin) synchronously,
then return the handler's own coroutine. Such a handler answers its errors before the
upgrade itself (:func:`rtserver.transports.http_errors.refusal`), the way the middlewares
would have.
"""

from __future__ import annotations

from typing import Final, TypeVar

from aiohttp import web

_H = TypeVar("_H")

#: The handlers marked with :func:`upgrade_route`; a handful, registered at import.
_UPGRADE_HANDLERS: Final[set[object]] = set()


def upgrade_route(handler: _H) -> _H:
    """Mark ``handler`` as an upgrade route (it stays a coroutine function, as aiohttp wants)."""
    _UPGRADE_HANDLERS.add(handler)
    return handler


def is_upgrade(request: web.Request) -> bool:
    """True when the request's matched route is an upgrade route."""
    return request.match_info.handler in _UPGRADE_HANDLERS
