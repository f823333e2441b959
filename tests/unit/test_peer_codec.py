"""The codec as a client uses it: client frames out, server frames in, and what it cannot
place told apart from what is no frame at all."""

from __future__ import annotations

import msgspec
import pytest

from rtserver.protocol.codec import (
    JSON_SUBPROTOCOL,
    MSGPACK_SUBPROTOCOL,
    PeerCodec,
    Unrecognised,
    peer_codec_for,
)
from rtserver.protocol.frames import Ping, Pong


@pytest.mark.parametrize(
    ("name", "subprotocol", "binary"),
    [("json", JSON_SUBPROTOCOL, False), ("msgpack", MSGPACK_SUBPROTOCOL, True)],
)
def test_each_codec_has_its_subprotocol_and_kind(name: str, subprotocol: str, binary: bool) -> None:
    codec = peer_codec_for(name)
    assert (codec.name, codec.binary) == (subprotocol, binary)


def test_an_unknown_codec_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"^codec must be 'json' or 'msgpack', not 'xml'$"):
        peer_codec_for("xml")


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_a_frame_goes_out_and_comes_back_typed(name: str) -> None:
    codec = peer_codec_for(name)
    out = codec.encode(Ping(id="k1"))
    wire = msgspec.msgpack.decode(out) if codec.binary else msgspec.json.decode(out)
    assert wire == {"type": "ping", "id": "k1"}
    back = msgspec.msgpack.encode if codec.binary else msgspec.json.encode
    assert codec.decode(back({"type": "pong", "id": "k1"})) == Pong(id="k1")


def test_json_text_decodes_as_its_bytes_do() -> None:
    assert peer_codec_for("json").decode('{"type": "pong", "id": "t"}') == Pong(id="t")


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_a_frame_of_a_newer_server_keeps_its_type_seq_and_error_code(name: str) -> None:
    codec = peer_codec_for(name)
    encode = msgspec.msgpack.encode if codec.binary else msgspec.json.encode
    newer = {"type": "glimmer", "seq": 7, "code": "new_code", "message": "later", "x": [1]}
    assert codec.decode(encode(newer)) == Unrecognised(
        type="glimmer", seq=7, code="new_code", message="later"
    )


def test_fields_of_the_wrong_kind_are_left_out_of_what_is_kept() -> None:
    codec = peer_codec_for("json")
    odd = b'{"type": 3, "seq": true, "code": ["c"], "message": {"m": 1}}'
    assert codec.decode(odd) == Unrecognised()
    assert codec.decode(b'{"type": "x", "seq": 2.0}') == Unrecognised(type="x")


def test_bytes_that_are_no_frame_are_an_error() -> None:
    codec = peer_codec_for("json")
    with pytest.raises(ValueError, match=r"^the server sent a frame that does not decode$"):
        codec.decode(b"{not json")
    with pytest.raises(ValueError, match=r"^the server sent a frame that is not a map$"):
        codec.decode(b"[1, 2]")


def test_a_peer_codec_made_by_hand_is_as_it_was_made() -> None:
    codec = PeerCodec("custom", binary=True)
    assert (codec.name, codec.binary) == ("custom", True)
    assert msgspec.msgpack.decode(codec.encode(Ping(id="b"))) == {"type": "ping", "id": "b"}
