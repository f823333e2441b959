"""How the load generator speaks to each kind of server, and the frame fields it reads.

rtserver speaks protocol v1 (``hello``, then ``prompt`` with ``max_tokens``); the bare peer
takes a ``go`` frame; python-socketio's peer speaks Engine.IO 4 over a WebSocket. All three
deliver frames of the same shape, decoded here into :class:`Incoming`.
"""

from __future__ import annotations

import msgspec

from benchmarks.peers import ROOM, Go
from benchmarks.wire import WireClient

PROMPT = "How do glaciers move, and what does measuring them teach us?"


class _Usage(msgspec.Struct):
    output_tokens: int = 0


class Incoming(msgspec.Struct):
    """The fields of any server frame that the checks need."""

    type: str
    seq: int | None = None
    stream: str | None = None
    text: str | None = None
    emitted_us: int | None = None
    usage: _Usage | None = None


_decode = msgspec.json.Decoder(Incoming).decode
_decode_event = msgspec.json.Decoder(tuple[str, Incoming]).decode
_encode = msgspec.json.encode


class Dialect:
    """How one server kind is spoken to; the default is the peers' plain JSON frames."""

    path = "/ws"
    protocol: str | None = None

    def opened(self, client: WireClient, index: int) -> None:
        return None

    def decode(self, payload: bytes, client: WireClient) -> Incoming | None:
        return _decode(payload)

    def trigger(self, turn: int, tokens: int, rate: float) -> bytes:
        return _encode(Go(turn=turn, tokens=tokens, rate=rate))


class RtDialect(Dialect):
    path = f"/v1/rooms/{ROOM}/ws"
    protocol = "rt.v1.json"

    def opened(self, client: WireClient, index: int) -> None:
        client.send_text(_encode({"type": "hello", "name": f"p{index}"}))

    def decode(self, payload: bytes, client: WireClient) -> Incoming | None:
        # Full presence lists can be long and carry nothing the checks need.
        if payload.startswith(b'{"type":"presence"'):
            return None
        return _decode(payload)

    def trigger(self, turn: int, tokens: int, rate: float) -> bytes:
        params = {"max_tokens": tokens}
        return _encode({"type": "prompt", "id": f"turn-{turn}", "text": PROMPT, "params": params})


class SocketIoDialect(Dialect):
    """Engine.IO 4 over a WebSocket: ``0`` open, ``40`` connect, ``42[event, data]``, ping ``2``."""

    path = "/socket.io/?EIO=4&transport=websocket"

    def decode(self, payload: bytes, client: WireClient) -> Incoming | None:
        if payload.startswith(b"42"):
            return _decode_event(payload[2:])[1]
        if payload == b"2":
            client.send_text(b"3")
        elif payload.startswith(b"0"):
            client.send_text(b"40")
        return None

    def trigger(self, turn: int, tokens: int, rate: float) -> bytes:
        return b'42["go",' + super().trigger(turn, tokens, rate) + b"]"


DIALECTS: dict[str, Dialect] = {
    "rtserver": RtDialect(),
    "bare": Dialect(),
    "socketio": SocketIoDialect(),
}
