"""Who is asking: a verified token's subject, or in open mode the client's address.

The identity decides the participant's id (stable for a ``sub``), its name (a token's ``name``
wins over ``hello.name``: the operator's backend vouches for it, the client does not), what it
may do (its :class:`~rtserver.auth.tokens.Grant`) and the key its limits count under.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from rtserver.auth.tokens import OPEN_GRANT, Grant, RoomTokens, grant_of
from rtserver.errors import ConfigError, PeerError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED_FOR: Final = "X-Forwarded-For"
#: Addresses in ``X-Forwarded-For`` read at most; a longer chain is a forgery or a loop.
MAX_HOPS: Final = 16
LOOPBACK_HOSTS: Final = frozenset(("localhost", "localhost.", "ip6-localhost"))
#: How the key of one connection alone begins: a fresh random key that nothing else counts under.
CONNECTION_KEY: Final = "conn:"
#: Client addresses (and forwarded hops) kept parsed.
ADDRESSES_PARSED: Final = 4096


@dataclass(frozen=True, slots=True)
class Identity:
    """One client as the server knows it."""

    #: What limits and budgets count under: ``sub:…``, ``addr:…`` or ``conn:…`` (one connection).
    key: str
    grant: Grant = OPEN_GRANT
    #: Stable participant id for a token's ``sub``; None lets the room make one.
    participant_id: str | None = None
    #: The token's ``name``, which wins over the one the client asks for.
    name: str | None = None


class Access:
    """The server's access rules: tokens (or open mode) and where client addresses come from."""

    def __init__(self, *, tokens: RoomTokens | None, trusted_proxies: Iterable[str]) -> None:
        self.tokens = tokens
        self._trusted: tuple[IpNetwork, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in trusted_proxies
        )

    @property
    def open(self) -> bool:
        """True when no secret is set and no token is checked."""
        return self.tokens is None

    def identify(
        self, request: web.BaseRequest, token: str | None, *, room: str | None, connection: bool
    ) -> Identity:
        """The identity of a request bearing ``token``, allowed into ``room`` if one is named.

        ``connection`` is True for a WebSocket or event stream: a direct loopback client then
        counts on its own, per connection, as the machine's own user and its tools do.
        """
        if self.tokens is None:
            return Identity(key=self.address_key(request, connection=connection))
        claims = self.tokens.verify(token)
        if room is not None and not claims.allows_room(room):
            raise PeerError("forbidden", f"the token does not allow room {room!r}")
        return Identity(
            key=f"sub:{claims.sub}",
            grant=grant_of(claims),
            participant_id=self._participant_id(claims.sub),
            name=claims.name,
        )

    def _participant_id(self, sub: str) -> str:
        # Keyed by the secret: the id is stable for a sub yet does not reveal it.
        assert self.tokens is not None
        digest = hmac.new(
            self.tokens.secret.encode(), b"participant:" + sub.encode(), hashlib.sha256
        ).digest()
        return "p_" + base64.urlsafe_b64encode(digest[:12]).decode()

    def client_address(self, request: web.BaseRequest) -> str | None:
        """The client's address: the peer, or from ``X-Forwarded-For`` behind a trusted proxy.

        The header is read right to left, skipping trusted proxies: the first address that is
        not one is the client (entries to its left are the client's to forge). A malformed
        entry stops the walk at the proxy that passed it on.
        """
        peer = _parse_ip(request.remote)
        if peer is None:
            return None
        address = peer
        header = request.headers.getall(FORWARDED_FOR, [])
        if not header or not self._is_trusted(peer):
            return str(peer)
        hops = [hop.strip() for line in header for hop in line.split(",")][-MAX_HOPS:]
        for hop in reversed(hops):
            parsed = _parse_ip(hop)
            if parsed is None:
                break
            address = parsed
            if not self._is_trusted(parsed):
                break
        return str(address)

    def address_key(self, request: web.BaseRequest, *, connection: bool) -> str:
        """The key of the request's client address, or of the connection alone (see identify)."""
        address = self.client_address(request)
        direct = FORWARDED_FOR not in request.headers
        loopback_peer = (ip := _parse_ip(request.remote)) is not None and ip.is_loopback
        if address is None or (connection and direct and loopback_peer):
            return f"{CONNECTION_KEY}{secrets.token_urlsafe(9)}"
        return f"addr:{address}"

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self._trusted)


@functools.lru_cache(maxsize=ADDRESSES_PARSED)
def _parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Cached: ipaddress parses in Python, and every request of a client parses the same peer.
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("[").split("]")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback_host(host: str) -> bool:
    """True for a listening host that only this machine can reach."""
    if host.lower() in LOOPBACK_HOSTS:
        return True
    address = _parse_ip(host)
    return address is not None and address.is_loopback


def check_open_mode(*, host: str, secret: str | None, open_on_purpose: bool) -> None:
    """Refuse to serve without tokens on a host others can reach, unless asked to on purpose."""
    if secret is not None or open_on_purpose or is_loopback_host(host):
        return
    raise ConfigError(
        f"refusing to serve {host} in open mode (no token secret): anyone who can reach it could"
        " use every room and spend the API keys. Set RTSERVER_SECRET (or the variable named by"
        " [auth] secret_env) to require room tokens, or pass --open (or [auth] open = true)"
        " to serve open on purpose"
    )
