"""The listening sockets of ``rtserver serve``: bound as asked, and every accept gated.

Real sockets on loopback; the gate is the app's SetupGate, or a subclass that holds set-ups
until the test lets them through.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

import rtserver.transports.site as site_module
from rtserver.transports.fairness import SetupGate
from rtserver.transports.site import GatedSite, address_of, listen
from tests.support import eventually


class HeldGate(SetupGate):
    """A gate that lets nothing through until :meth:`release`; counts who asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0
        self._open = asyncio.Event()

    async def enter(self) -> None:
        self.asked += 1
        await self._open.wait()

    def release(self) -> None:
        self._open.set()


def _app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.remote}")

    app = web.Application()
    app.router.add_get("/", hello)
    return app


@asynccontextmanager
async def serving(gate: SetupGate) -> AsyncIterator[tuple[str, GatedSite]]:
    [sock] = listen("127.0.0.1", 0)
    runner = web.AppRunner(_app())
    await runner.setup()
    site = GatedSite(runner, sock, gate=gate)
    try:
        await site.start()
        yield address_of(sock), site
    finally:
        await runner.cleanup()
        sock.close()


def test_listen_binds_a_listening_non_blocking_socket() -> None:
    [sock] = listen("127.0.0.1", 0)
    with sock:
        host, port = sock.getsockname()
        assert (host, sock.getblocking()) == ("127.0.0.1", False)
        assert port != 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert address_of(sock) == f"http://127.0.0.1:{port}/"


def test_listen_on_ipv6_names_the_address_in_brackets() -> None:
    [sock] = listen("::1", 0)
    with sock:
        assert sock.family == socket.AF_INET6
        assert address_of(sock) == f"http://[::1]:{sock.getsockname()[1]}/"


def test_the_ipv6_wildcard_takes_no_ipv4() -> None:
    # Only the wildcard shows it (Linux marks a socket bound to one IPv6 address v6-only
    # itself); it is bound and closed at once, and nothing connects to it.
    [sock] = listen("::", 0)
    with sock:
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1


def _two_loopbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every host name two IPv4 loopback addresses (Linux routes all of 127/8)."""
    real = socket.getaddrinfo

    def two(host: str, port: int, *args: object, **kwargs: object) -> list[object]:
        [first] = real("127.0.0.1", port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        family, kind, proto, name, _ = first
        return [(family, kind, proto, name, (ip, port)) for ip in ("127.0.0.1", "127.0.0.2")]

    monkeypatch.setattr(socket, "getaddrinfo", two)


def test_port_zero_gives_every_address_of_a_host_the_same_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _two_loopbacks(monkeypatch)
    sockets = listen("both", 0)
    try:
        assert [s.getsockname()[0] for s in sockets] == ["127.0.0.1", "127.0.0.2"]
        assert len({s.getsockname()[1] for s in sockets}) == 1
    finally:
        for sock in sockets:
            sock.close()


def test_a_failed_bind_leaves_nothing_open(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[socket.socket] = []

    class Recorded(socket.socket):
        """A socket that ``listen`` makes, noted so that the test can see it closed."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    with socket.socket() as taken:
        taken.bind(("127.0.0.2", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _two_loopbacks(monkeypatch)
        monkeypatch.setattr(socket, "socket", Recorded)
        with pytest.raises(OSError, match="in use") as failed:
            listen("both", port)
        assert failed.value.errno == errno.EADDRINUSE
    # The first address was bound before the second failed; both sockets were let go.
    assert [sock.fileno() for sock in made] == [-1, -1]


async def test_a_connection_is_served_only_once_the_gate_lets_its_accept_through() -> None:
    gate = HeldGate()
    async with serving(gate) as (base, _), aiohttp.ClientSession() as http:
        request = asyncio.ensure_future(http.get(base))
        await eventually(lambda: gate.asked == 1)
        # The kernel took the connection; the server holds it unserved at the gate.
        await asyncio.sleep(0.05)  # a window for a wrong answer to arrive, not a wait for one
        assert not request.done()
        gate.release()
        async with await request as response:
            assert response.status == 200
            assert await response.text() == "hello 127.0.0.1"


async def test_connections_held_at_the_gate_are_all_served_once_it_opens() -> None:
    gate = HeldGate()
    async with serving(gate) as (base, _), aiohttp.ClientSession() as http:
        requests = [asyncio.ensure_future(http.get(base)) for _ in range(20)]
        await eventually(lambda: gate.asked == 1)
        # One accepted connection waits at the gate; the other 19 wait in the listen queue.
        assert gate.asked == 1
        gate.release()
        statuses = []
        for request in requests:
            async with await request as response:
                statuses.append(response.status)
        assert statuses == [200] * 20
        assert gate.asked == 20


async def test_a_real_gate_lets_a_burst_through_a_few_accepts_a_turn() -> None:
    gate = SetupGate(per_turn=1)
    async with serving(gate) as (base, _):
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def one() -> int:
                async with http.get(base) as response:
                    return response.status

            assert await asyncio.gather(*(one() for _ in range(50))) == [200] * 50


async def test_stopping_closes_the_socket_and_the_accepting() -> None:
    gate = SetupGate()
    async with serving(gate) as (base, site):
        async with aiohttp.ClientSession() as http, http.get(base) as response:
            assert response.status == 200
        accepting = site._accepting
        assert accepting is not None
        port = int(base.rsplit(":", 1)[1].rstrip("/"))
    assert accepting.cancelled()
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


async def test_an_accept_out_of_descriptors_is_logged_and_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    real = loop.sock_accept
    failures = [OSError(errno.EMFILE, "Too many open files"), ConnectionAbortedError()]

    async def failing(sock: socket.socket) -> tuple[socket.socket, object]:
        if failures:
            raise failures.pop(0)
        return await real(sock)

    monkeypatch.setattr(loop, "sock_accept", failing)
    waits: list[float] = []

    class Waiting:
        """asyncio as the site sees it, but a wait is noted and lasts no time."""

        def __getattr__(self, name: str) -> object:
            return getattr(asyncio, name)

        @staticmethod
        async def sleep(seconds: float) -> None:
            waits.append(seconds)
            await asyncio.sleep(0)

    monkeypatch.setattr(site_module, "asyncio", Waiting())
    with caplog.at_level(logging.WARNING, logger="rtserver.transports.site"):
        async with (
            serving(SetupGate()) as (base, _),
            aiohttp.ClientSession() as http,
            http.get(base) as response,
        ):
            assert response.status == 200
    assert failures == []
    # Out of descriptors: a pause before the next accept. An aborted connection: none.
    assert waits == [site_module.ACCEPT_RETRY_S]
    [warned] = [r for r in caplog.records if r.name == "rtserver.transports.site"]
    assert warned.getMessage() == "cannot accept a connection: [Errno 24] Too many open files"


async def test_a_connection_that_cannot_be_set_up_is_closed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    closed: list[socket.socket] = []

    async def refusing(factory: object, sock: socket.socket) -> None:
        closed.append(sock)
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

    monkeypatch.setattr(loop, "connect_accepted_socket", refusing)
    with caplog.at_level(logging.DEBUG, logger="rtserver.transports.site"):
        async with serving(SetupGate()) as (base, _):
            host, port = base.removeprefix("http://").rstrip("/").split(":")
            with socket.create_connection((host, int(port))):
                await eventually(lambda: bool(closed) and closed[0].fileno() == -1)
    assert "could not be set up: [Errno 104] Connection reset by peer" in caplog.text
