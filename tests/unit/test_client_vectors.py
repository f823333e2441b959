"""The Python client decodes every server vector of protocol/vectors and encodes every
client one byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rtserver.protocol.codec import JSON, Unrecognised, peer_codec_for

VECTORS = Path(__file__).parents[2] / "protocol" / "vectors"


def vectors(name: str, direction: str) -> list[dict[str, Any]]:
    found = json.loads((VECTORS / name).read_text())["vectors"]
    return [v for v in found if v["direction"] == direction]


SERVER = vectors("server.json", "server") + vectors("tolerant.json", "server")
CLIENT = vectors("client.json", "client")


@pytest.mark.parametrize("vector", SERVER, ids=lambda v: v["name"])
@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_every_server_vector_decodes_to_its_frame(vector: dict[str, Any], codec: str) -> None:
    peer = peer_codec_for(codec)
    data = vector["json"].encode() if codec == "json" else bytes.fromhex(vector["msgpack_hex"])
    frame = peer.decode(data)
    if vector["frame"] is None:
        # A newer frame: skipped, but a room event keeps its seq so no false gap is seen.
        sent = json.loads(vector["json"])
        assert frame == Unrecognised(type=sent["type"], seq=sent.get("seq"))
    else:
        assert msgspec.to_builtins(frame) == vector["frame"]


@pytest.mark.parametrize("vector", CLIENT, ids=lambda v: v["name"])
def test_every_client_vector_is_what_the_client_encodes(vector: dict[str, Any]) -> None:
    frame = JSON.decode(vector["json"])
    assert peer_codec_for("json").encode(frame) == vector["json"].encode()
    assert peer_codec_for("msgpack").encode(frame) == bytes.fromhex(vector["msgpack_hex"])
