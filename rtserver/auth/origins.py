"""Which web pages may talk to the server: its own origin and the configured ones.

A browser sends ``Origin`` with every WebSocket handshake, every cross-origin request and
every POST; a page elsewhere must not be able to drive a room (or spend the operator's keys)
in its visitor's name. A request without ``Origin`` is not from a page and passes: tokens,
not origins, keep non-browser clients out.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web

from rtserver.errors import PeerError

ANY_PORT = ":*"


class OriginPolicy:
    """The server's own origin plus ``allowed`` (``scheme://host[:port]``, port ``*`` any)."""

    def __init__(self, *, allowed: Iterable[str]) -> None:
        exact: set[str] = set()
        any_port: set[str] = set()
        for origin in allowed:
            origin = origin.lower().rstrip("/")
            if origin.endswith(ANY_PORT):
                any_port.add(origin.removesuffix(ANY_PORT))
            else:
                exact.add(origin)
        self._exact = frozenset(exact)
        self._any_port = frozenset(any_port)

    def allows(self, origin: str, *, host: str | None) -> bool:
        """True for ``origin`` from the same host as the request (``Host``) or an allowed one.

        ``null`` (sandboxed frames, ``file:`` pages, some redirects) is never allowed.
        """
        origin = origin.strip().lower()
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            return False
        if host is not None and parts.netloc == host.lower():
            return True
        if origin in self._exact:
            return True
        base = f"{parts.scheme}://{parts.hostname}"
        if ":" in (parts.hostname or ""):
            base = f"{parts.scheme}://[{parts.hostname}]"
        return base in self._any_port

    def cors_origin(self, request: web.BaseRequest) -> str | None:
        """The request's ``Origin`` when CORS headers should name it; None for no headers."""
        origin = request.headers.get("Origin")
        if origin is None or not self.allows(origin, host=None):
            return None
        return origin

    def check(self, request: web.BaseRequest) -> None:
        """Raise ``forbidden`` (403) for a request from a page the server does not allow."""
        origin = request.headers.get("Origin")
        if origin is None or self.allows(origin, host=request.host):
            return
        raise PeerError(
            "forbidden",
            f"pages of origin {origin[:100]!r} may not use this server:"
            " add it to [server] allowed_origins",
        )
