"""Which web pages may talk to the server: its own origin and the configured ones.

A browser sends ``Origin`` with every WebSocket handshake, every cross-origin request and
every POST; a page elsewhere must not be able to drive a room (or spend the operator's keys)
in its visitor's name. A request without ``Origin`` is not from a page and passes: tokens,
not origins, keep non-browser clients out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web

from rtserver.errors import PeerError

ANY_PORT = ":*"


class OriginPolicy:
    """The server's own origin plus ``allowed`` (``scheme://host[:port]``, port ``*`` any).

    ``any_host_name`` is False in open mode: a request must then name the server by an IP
    address, ``localhost`` or the host of an allowed origin. A page of a domain that resolves to
    this machine (DNS rebinding) would otherwise be the server's "own" origin, and its
    same-origin requests carry no ``Origin`` at all. With tokens, a page without one gets
    nowhere, so any name will do.
    """

    def __init__(self, *, allowed: Iterable[str], any_host_name: bool = True) -> None:
        self._any_host_name = any_host_name
        exact: set[str] = set()
        any_port: set[str] = set()
        names: set[str] = set()
        for origin in allowed:
            origin = origin.lower().rstrip("/")
            names.add(urlsplit(origin.removesuffix(ANY_PORT)).hostname or "")
            if origin.endswith(ANY_PORT):
                any_port.add(origin.removesuffix(ANY_PORT))
            else:
                exact.add(origin)
        self._exact = frozenset(exact)
        self._any_port = frozenset(any_port)
        self._names = frozenset(names)

    def check_host(self, request: web.BaseRequest) -> None:
        """In open mode, raise ``forbidden`` for a ``Host`` that is a name not known safe."""
        if self._any_host_name:
            return
        hostname = urlsplit(f"//{request.host}").hostname or ""
        if _is_ip(hostname) or hostname == "localhost" or hostname.endswith(".localhost"):
            return
        if hostname in self._names:
            return
        raise PeerError(
            "forbidden",
            f"in open mode this server answers to its IP address or localhost, not"
            f" {hostname[:100]!r}: list the origin in [server] allowed_origins or set a secret",
        )

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


def _is_ip(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True
