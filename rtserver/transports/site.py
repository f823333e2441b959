"""Listening sockets whose accepts wait their turn at the set-up gate.

asyncio accepts, in one callback, as many connections as the listen queue holds (up to the
backlog: aiohttp's default is 128), and makes each one's transport and protocol in the next
turn. A join storm thus brings a hundred connection set-ups into one loop turn, and every
socket already in a room waits behind them. Here accepting a connection is a set-up step like
the WebSocket upgrade and the join: it passes the app's :class:`SetupGate` first, in arrival
order with the others, so a storm is taken in a few connections a turn while the rest wait in
the kernel's listen queue, and the loop serves everyone else between.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from contextlib import suppress
from typing import Final

from aiohttp import web
from yarl import URL

from rtserver.transports.fairness import SetupGate

log = logging.getLogger(__name__)

#: Connections the kernel holds for us while the loop works through those before them (Linux
#: takes at most ``net.core.somaxconn`` of it, 4,096 by default since 5.4).
LISTEN_BACKLOG: Final = 4096
#: After an accept fails for want of descriptors or memory, the wait before the next one.
ACCEPT_RETRY_S: Final = 1.0


def listen(host: str, port: int, *, backlog: int = LISTEN_BACKLOG) -> list[socket.socket]:
    """Bound, listening sockets for every address ``host`` names, all on one port.

    ``port`` 0 leaves the port to the system; the other addresses of ``host`` then take the
    port the first one got. Raises :class:`OSError` (nothing left open) if any bind fails.
    """
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # One socket per family, as asyncio does: "::" would otherwise take IPv4 too.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def address_of(sock: socket.socket) -> str:
    """The ``http://host:port/`` a listening socket serves."""
    host, port = sock.getsockname()[:2]
    return str(URL.build(scheme="http", host=host, port=port, path="/"))


class GatedSite(web.BaseSite):
    """An aiohttp site on a listening socket of its own; each accept passes ``gate`` first."""

    __slots__ = ("_accepting", "_connecting", "_gate", "_sock")

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, *, gate: SetupGate) -> None:
        super().__init__(runner, backlog=LISTEN_BACKLOG)
        self._sock = sock
        self._gate = gate
        self._accepting: asyncio.Task[None] | None = None
        # Held so that a connection being made is not collected half-way.
        self._connecting: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return address_of(self._sock).rstrip("/")

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None, "the runner is set up before its sites"
        # The asyncio server owns the socket (stop() closes it through it) but does not
        # accept: the task below does, one gated connection at a time.
        self._server = await loop.create_server(server, sock=self._sock, start_serving=False)
        self._accepting = loop.create_task(self._accept_forever(server))

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with suppress(asyncio.CancelledError):
                await self._accepting
        await super().stop()

    async def _accept_forever(self, server: web.Server) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except (ConnectionAbortedError, InterruptedError):
                continue  # the client gave up while queued: the next one
            except OSError as exc:
                # Out of descriptors or memory: connections wait in the queue meanwhile.
                log.warning("cannot accept a connection: %s", exc)
                await asyncio.sleep(ACCEPT_RETRY_S)
                continue
            await self._gate.enter()
            task = loop.create_task(_connect(loop, conn, server))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)


async def _connect(
    loop: asyncio.AbstractEventLoop, conn: socket.socket, server: web.Server
) -> None:
    try:
        await loop.connect_accepted_socket(server, conn)
    except OSError as exc:
        conn.close()
        log.debug("an accepted connection could not be set up: %s", exc)
