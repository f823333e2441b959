"""A lean WebSocket client for the load generator: one asyncio Protocol per connection.

The generator must not be the bottleneck when thousands of sockets receive tens of thousands of
frames a second, so this client does the least per frame: frames are cut out of each chunk the
kernel hands over in one pass, stamped with one clock reading per chunk, and passed on as bytes.
No per-message future, queue or task, as a general client (aiohttp's, websockets') would have.
Server frames are never masked; client frames always are (RFC 6455).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections.abc import Callable

from rtserver.protocol.closecodes import CloseCode

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x1, 0x2, 0x8, 0x9, 0xA

#: Called with each data frame's payload and the Unix microseconds its chunk arrived.
OnMessage = Callable[[bytes, int], None]


class HandshakeError(ConnectionError):
    """The server did not upgrade the connection."""


class WireClient(asyncio.Protocol):
    """One WebSocket connection; ``on_message`` sees every text or binary frame."""

    def __init__(
        self, path: str, host: str, *, protocol: str | None, on_message: OnMessage
    ) -> None:
        self._key = base64.b64encode(os.urandom(16))
        self._request = _upgrade_request(path, host, self._key, protocol)
        self._on_message = on_message
        self._buffer = bytearray()
        self._chunks: list[tuple[int, bytes]] = []
        self.received_bytes = 0
        self._loop = asyncio.get_running_loop()
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[int | None] = self._loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        # After the chunks still waiting to be handled, which may hold the close frame.
        self._loop.call_soon(self._lost)

    def _lost(self) -> None:
        if not self.opened.done():
            self.opened.set_exception(HandshakeError("connection lost before the upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        # The clock is read here, but the frames are cut out and handled only once the loop
        # has read every socket that was ready: otherwise each socket's arrival time would
        # include the handling of all the sockets read before it in the same pass, and
        # skew and latency would measure this client rather than the server.
        self.received_bytes += len(data)
        self._chunks.append((time.time_ns() // 1000, data))
        if len(self._chunks) == 1:
            self._loop.call_soon(self._handle_chunks)

    def _handle_chunks(self) -> None:
        chunks, self._chunks = self._chunks, []
        for now_us, data in chunks:
            self._buffer += data
            if not self._upgraded and not self._read_upgrade():
                continue
            self._read_frames(now_us)

    def send_text(self, payload: bytes) -> None:
        """Send one masked text frame."""
        assert self.transport is not None
        self.transport.write(_client_frame(_TEXT, payload))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_client_frame(_CLOSE, struct.pack("!H", CloseCode.NORMAL)))
            self.transport.close()

    def _read_upgrade(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status, *headers = head.split("\r\n")
        accept = hashlib.sha1(self._key + _GUID).digest()
        expected = base64.b64encode(accept).decode()
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in headers)}
        if " 101 " not in f"{status} " or fields.get("sec-websocket-accept") != expected:
            self.opened.set_exception(HandshakeError(f"upgrade refused: {status}"))
            assert self.transport is not None
            self.transport.close()
            return False
        self._upgraded = True
        self.opened.set_result(None)
        return True

    def _read_frames(self, now_us: int) -> None:
        buf = self._buffer
        view = memoryview(buf)
        at, size = 0, len(buf)
        while size - at >= 2:
            opcode = buf[at] & 0x0F
            length = buf[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if size - at < 4:
                    break
                length = int.from_bytes(view[at + 2 : at + 4])
                start = at + 4
            elif length == 127:
                if size - at < 10:
                    break
                length = int.from_bytes(view[at + 2 : at + 10])
                start = at + 10
            if size - start < length:
                break
            payload = bytes(view[start : start + length])
            at = start + length
            if opcode in (_TEXT, _BINARY):
                self._on_message(payload, now_us)
            elif opcode == _PING:
                assert self.transport is not None
                self.transport.write(_client_frame(_PONG, payload))
            elif opcode == _CLOSE:
                code = int.from_bytes(payload[:2]) if len(payload) >= 2 else None
                if not self.closed.done():
                    self.closed.set_result(code)
        view.release()
        del buf[:at]


def _upgrade_request(path: str, host: str, key: bytes, protocol: str | None) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _client_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    # Client frames are few and small (hello, prompts, pongs): a plain loop is fast enough.
    body = bytes(b ^ mask[n & 3] for n, b in enumerate(payload))
    return head + mask + body
