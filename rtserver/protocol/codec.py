"""Codecs: typed frames to bytes and back, chosen by WebSocket subprotocol.

Pure code. Each room event is wrapped once in an :class:`Outgoing`, which encodes it at most once
per codec however many participants receive it.
"""

from __future__ import annotations

from typing import Final, Protocol

import msgspec

from rtserver.errors import PeerError
from rtserver.protocol.frames import CLIENT_TYPES, ClientFrame, MessageId, ServerFrame
from rtserver.protocol.nesting import check_nesting, too_deep_error

#: Where a frame stands in its room's order: the log's epoch and the seq a client holds once it
#: has the frame. Codecs that name events (SSE's ``id:``) format it; the others ignore it.
EventAt = tuple[str, int]

JSON_SUBPROTOCOL: Final = "rt.v1.json"
MSGPACK_SUBPROTOCOL: Final = "rt.v1.msgpack"
SUBPROTOCOLS: Final = (JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL)


class _Envelope(msgspec.Struct):
    """What can still be read of a frame that failed validation: its type and id."""

    type: object = None
    id: object = None


class Codec(Protocol):
    """Turns frames into wire bytes and client bytes into frames."""

    @property
    def name(self) -> str: ...

    @property
    def binary(self) -> bool:
        """True when frames travel as binary WebSocket messages."""
        ...

    def render(self, frame: ServerFrame, at: EventAt | None) -> bytes:
        """Encode a server frame; ``at`` is where it stands in the room's order, if anywhere."""
        ...

    def decode(self, data: str | bytes) -> ClientFrame:
        """Decode one client frame or raise :class:`PeerError` naming what is wrong."""
        ...


class _MsgspecCodec:
    def __init__(
        self,
        name: str,
        *,
        binary: bool,
        encoder: msgspec.json.Encoder | msgspec.msgpack.Encoder,
        decoder: msgspec.json.Decoder[ClientFrame] | msgspec.msgpack.Decoder[ClientFrame],
        envelope: msgspec.json.Decoder[_Envelope] | msgspec.msgpack.Decoder[_Envelope],
    ) -> None:
        self.name = name
        self.binary = binary
        self._encode = encoder.encode
        self._decoder = decoder
        self._envelope = envelope

    def render(self, frame: ServerFrame, at: EventAt | None) -> bytes:
        return self._encode(frame)

    def encode(self, frame: ServerFrame) -> bytes:
        return self._encode(frame)

    def decode(self, data: str | bytes) -> ClientFrame:
        if isinstance(data, str):
            if self.binary:
                raise PeerError("bad_frame", f"{self.name} frames must be binary messages")
            data = data.encode()
        try:
            frame = self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            check_nesting(data, msgpack=self.binary)
            raise self._explain(data, str(exc)) from None
        except msgspec.DecodeError:
            raise PeerError("bad_frame", f"frame is not valid {self._format}") from None
        except RecursionError:
            raise too_deep_error() from None
        check_nesting(data, msgpack=self.binary)
        return frame

    @property
    def _format(self) -> str:
        return "MessagePack" if self.binary else "JSON"

    def _explain(self, data: bytes, detail: str) -> PeerError:
        try:
            envelope = self._envelope.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return PeerError("bad_frame", "a frame must be a map with a string `type`")
        ref = _usable_ref(envelope.id)
        kind = envelope.type
        if not isinstance(kind, str):
            return PeerError("bad_frame", "a frame must have a string `type`", ref=ref)
        if kind not in CLIENT_TYPES:
            return PeerError("unknown_type", f"unknown frame type {kind!r}"[:200], ref=ref)
        return PeerError("bad_frame", f"invalid {kind} frame: {detail}"[:300], ref=ref)


def _usable_ref(value: object) -> str | None:
    """The frame's ``id`` if it is a valid id, to echo as ``ref``; else ``None``.

    An invalid id (empty, too long, not a string) is not echoed: it could be as large as the
    frame, and the client cannot have been waiting for an answer to it.
    """
    try:
        return msgspec.convert(value, MessageId)
    except msgspec.ValidationError:
        return None


def _json_codec() -> _MsgspecCodec:
    return _MsgspecCodec(
        JSON_SUBPROTOCOL,
        binary=False,
        encoder=msgspec.json.Encoder(),
        decoder=msgspec.json.Decoder(ClientFrame),
        envelope=msgspec.json.Decoder(_Envelope),
    )


def _msgpack_codec() -> _MsgspecCodec:
    return _MsgspecCodec(
        MSGPACK_SUBPROTOCOL,
        binary=True,
        encoder=msgspec.msgpack.Encoder(),
        decoder=msgspec.msgpack.Decoder(ClientFrame),
        envelope=msgspec.msgpack.Decoder(_Envelope),
    )


JSON: Final = _json_codec()
MSGPACK: Final = _msgpack_codec()


def codec_for(subprotocol: str | None) -> _MsgspecCodec:
    """The codec for a negotiated subprotocol; JSON when the client offered none."""
    return MSGPACK if subprotocol == MSGPACK_SUBPROTOCOL else JSON


class Outgoing:
    """A server frame on its way to many participants, encoded at most once per codec."""

    __slots__ = ("_cache", "at", "frame")

    def __init__(self, frame: ServerFrame, at: EventAt | None = None) -> None:
        self.frame = frame
        self.at = at
        self._cache: dict[str, bytes] = {}

    def data(self, codec: Codec) -> bytes:
        """The frame's bytes in ``codec``, encoding on first use only."""
        try:
            return self._cache[codec.name]
        except KeyError:
            encoded = self._cache[codec.name] = codec.render(self.frame, self.at)
            return encoded


# --- the client's side ----------------------------------------------------------------------


class Unrecognised(msgspec.Struct, frozen=True, kw_only=True):
    """A server frame that this version cannot read: a newer type, or a newer value.

    Receivers ignore what they do not know; a client still needs its ``seq`` (to keep count of
    room events) and, for an error, its ``code`` (a newer refusal still ends a connection).
    """

    type: str | None = None
    seq: int | None = None
    code: str | None = None
    message: str | None = None


class _ServerEnvelope(msgspec.Struct):
    type: object = None
    seq: object = None
    code: object = None
    message: object = None


class PeerCodec:
    """A codec as a client uses it: client frames to bytes, server bytes to typed frames."""

    def __init__(self, name: str, *, binary: bool) -> None:
        self.name = name
        self.binary = binary
        self._encoder: msgspec.json.Encoder | msgspec.msgpack.Encoder
        self._decoder: msgspec.json.Decoder[ServerFrame] | msgspec.msgpack.Decoder[ServerFrame]
        self._envelope: (
            msgspec.json.Decoder[_ServerEnvelope] | msgspec.msgpack.Decoder[_ServerEnvelope]
        )
        if binary:
            self._encoder = msgspec.msgpack.Encoder()
            self._decoder = msgspec.msgpack.Decoder(ServerFrame)
            self._envelope = msgspec.msgpack.Decoder(_ServerEnvelope)
        else:
            self._encoder = msgspec.json.Encoder()
            self._decoder = msgspec.json.Decoder(ServerFrame)
            self._envelope = msgspec.json.Decoder(_ServerEnvelope)

    def encode(self, frame: ClientFrame) -> bytes:
        return self._encoder.encode(frame)

    def decode(self, data: str | bytes) -> ServerFrame | Unrecognised:
        """One server frame; raises ``ValueError`` for bytes that are no frame at all."""
        if isinstance(data, str):
            data = data.encode()
        try:
            return self._decoder.decode(data)
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError:
            raise ValueError("the server sent a frame that does not decode") from None
        try:
            envelope = self._envelope.decode(data)
        except msgspec.ValidationError:
            raise ValueError("the server sent a frame that is not a map") from None
        return Unrecognised(
            type=envelope.type if isinstance(envelope.type, str) else None,
            seq=envelope.seq if type(envelope.seq) is int else None,
            code=envelope.code if isinstance(envelope.code, str) else None,
            message=envelope.message if isinstance(envelope.message, str) else None,
        )


def peer_codec_for(name: str) -> PeerCodec:
    """The client-side codec for ``"json"`` or ``"msgpack"``."""
    if name not in ("json", "msgpack"):
        raise ValueError(f"codec must be 'json' or 'msgpack', not {name!r}")
    return PeerCodec(
        MSGPACK_SUBPROTOCOL if name == "msgpack" else JSON_SUBPROTOCOL, binary=name == "msgpack"
    )
