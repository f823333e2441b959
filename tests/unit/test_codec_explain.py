"""What a refused client frame is told, and what a client keeps of a frame it cannot read."""

from __future__ import annotations

import msgspec
import pytest

from rtserver.errors import PeerError
from rtserver.protocol.codec import JSON, MSGPACK, Unrecognised, _MsgspecCodec, peer_codec_for
from rtserver.protocol.frames import Ping
from rtserver.protocol.nesting import MAX_NESTING

CODECS = [JSON, MSGPACK]


def _encode(codec: _MsgspecCodec, value: object) -> bytes:
    return msgspec.msgpack.encode(value) if codec.binary else msgspec.json.encode(value)


def _refusal(codec: _MsgspecCodec, data: bytes) -> PeerError:
    with pytest.raises(PeerError) as refused:
        codec.decode(data)
    return refused.value


def _arrays(levels: int) -> object:
    value: object = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_an_invalid_field_is_named_with_msgspecs_own_detail(codec: _MsgspecCodec) -> None:
    error = _refusal(codec, _encode(codec, {"type": "ping", "id": 5}))
    assert (error.code, error.message) == (
        "bad_frame",
        "invalid ping frame: Expected `str | null`, got `int` - at `$.id`",
    )


def test_an_unknown_type_is_cut_to_exactly_200_characters() -> None:
    error = _refusal(JSON, msgspec.json.encode({"type": "t" * 1_000}))
    assert error.code == "unknown_type"
    assert error.message == ("unknown frame type '" + "t" * 1_000)[:200]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_a_too_deep_frame_that_is_also_invalid_is_refused_for_its_depth(
    codec: _MsgspecCodec,
) -> None:
    """Depth is checked before the explanation, which would decode the frame once more."""
    frame = {"type": "ping", "id": 5, "x": _arrays(MAX_NESTING)}
    error = _refusal(codec, _encode(codec, frame))
    assert error.code == "bad_frame"
    assert f"more than {MAX_NESTING} levels deep" in error.message


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_a_too_deep_valid_frame_is_refused_in_either_codec(codec: _MsgspecCodec) -> None:
    deep = _encode(codec, {"type": "ping", "id": "p", "x": _arrays(MAX_NESTING)})
    error = _refusal(codec, deep)
    assert f"more than {MAX_NESTING} levels deep" in error.message
    shallow = _encode(codec, {"type": "ping", "id": "p", "x": _arrays(MAX_NESTING - 1)})
    assert codec.decode(shallow) == Ping(id="p")


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_a_client_keeps_the_type_of_a_frame_it_cannot_read(name: str) -> None:
    codec = peer_codec_for(name)
    encode = msgspec.msgpack.encode if codec.binary else msgspec.json.encode
    assert codec.decode(encode({"type": "shimmer", "seq": 3})) == Unrecognised(
        type="shimmer", seq=3
    )


def test_a_server_frame_that_is_not_a_map_is_named_so() -> None:
    with pytest.raises(ValueError, match=r"^the server sent a frame that is not a map$"):
        peer_codec_for("msgpack").decode(msgspec.msgpack.encode([1, 2]))
