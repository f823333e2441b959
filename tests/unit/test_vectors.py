"""The golden vectors in protocol/vectors against rtserver's frames and codecs.

The vectors are the contract other implementations test against, so these tests pin both
directions: what rtserver writes is byte for byte what the vectors hold, and what the vectors
hold decodes to the frames they describe.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import msgspec
import pytest

from rtserver.errors import PeerError
from rtserver.protocol.codec import JSON, MSGPACK, Outgoing
from rtserver.protocol.frames import ClientFrame, Frame, ServerFrame

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"

Vector = dict[str, Any]


def _load(name: str) -> list[Vector]:
    document = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert document["protocol"] == "rt.v1"
    vectors: list[Vector] = document["vectors"]
    return vectors


CLIENT = _load("client.json")
SERVER = _load("server.json")
INVALID = _load("invalid.json")
TOLERANT = _load("tolerant.json")
TOLERANT_CLIENT = [v for v in TOLERANT if v["direction"] == "client"]
TOLERANT_SERVER = [v for v in TOLERANT if v["direction"] == "server"]


def _ids(vectors: list[Vector]) -> list[str]:
    return [v["name"] for v in vectors]


def _tags(union: object) -> dict[str, type[Frame]]:
    """Wire ``type`` to frame class, for every member of a frame union."""
    members: tuple[type[Frame], ...] = get_args(union)
    tags: dict[str, type[Frame]] = {}
    for member in members:
        tag = member.__struct_config__.tag
        assert isinstance(tag, str)
        tags[tag] = member
    return tags


CLIENT_TAGS = _tags(ClientFrame)
SERVER_TAGS = _tags(ServerFrame)


def _inputs(vector: Vector) -> list[tuple[str, bytes]]:
    """The vector's encodings present, as (codec name, bytes)."""
    found = []
    if "json" in vector:
        found.append(("json", vector["json"].encode("utf-8")))
    if "msgpack_hex" in vector:
        found.append(("msgpack", bytes.fromhex(vector["msgpack_hex"])))
    return found


# --- the files themselves -------------------------------------------------------------------


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rt_vectors_generate", VECTORS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vector_files_are_what_the_generator_writes() -> None:
    built: dict[str, str] = _generator().build()
    assert sorted(built) == sorted(p.name for p in VECTORS.glob("*.json"))
    stale = [name for name, text in built.items() if (VECTORS / name).read_text("utf-8") != text]
    assert not stale, f"run `python protocol/vectors/generate.py`; stale: {stale}"


@pytest.mark.parametrize("vectors", [CLIENT, SERVER, INVALID, TOLERANT])
def test_names_are_unique(vectors: list[Vector]) -> None:
    names = _ids(vectors)
    assert len(names) == len(set(names))


def test_every_client_frame_type_has_a_vector() -> None:
    assert {v["frame"]["type"] for v in CLIENT} == set(CLIENT_TAGS)
    assert {v["direction"] for v in CLIENT} == {"client"}


def test_every_server_frame_type_has_a_vector() -> None:
    assert {v["frame"]["type"] for v in SERVER} == set(SERVER_TAGS)
    assert {v["direction"] for v in SERVER} == {"server"}


@pytest.mark.parametrize(("vectors", "tags"), [(CLIENT, CLIENT_TAGS), (SERVER, SERVER_TAGS)])
def test_every_field_is_seen_present_and_every_optional_one_absent(
    vectors: list[Vector], tags: dict[str, type[Frame]]
) -> None:
    missing = []
    for tag, cls in tags.items():
        frames = [v["frame"] for v in vectors if v["frame"]["type"] == tag]
        for field in msgspec.structs.fields(cls):
            if not any(field.encode_name in f for f in frames):
                missing.append(f"{tag}.{field.encode_name} never present")
            optional = field.default is not msgspec.NODEFAULT
            if optional and all(field.encode_name in f for f in frames):
                missing.append(f"{tag}.{field.encode_name} never absent")
    assert not missing


# --- valid frames ---------------------------------------------------------------------------


@pytest.mark.parametrize("vector", SERVER, ids=_ids(SERVER))
def test_server_vector_encodes_to_the_stored_bytes(vector: Vector) -> None:
    frame = msgspec.convert(vector["frame"], ServerFrame)
    assert JSON.encode(frame) == vector["json"].encode("utf-8")
    assert MSGPACK.encode(frame).hex() == vector["msgpack_hex"]
    # The path the rooms use: one Outgoing, rendered per codec.
    out = Outgoing(frame, ("ep", 1))
    assert out.data(JSON) == vector["json"].encode("utf-8")
    assert out.data(MSGPACK).hex() == vector["msgpack_hex"]


@pytest.mark.parametrize("vector", SERVER, ids=_ids(SERVER))
def test_server_vector_decodes_to_its_frame(vector: Vector) -> None:
    expected = msgspec.convert(vector["frame"], ServerFrame)
    from_json = msgspec.json.decode(vector["json"], type=ServerFrame)
    from_msgpack = msgspec.msgpack.decode(bytes.fromhex(vector["msgpack_hex"]), type=ServerFrame)
    assert from_json == expected
    assert from_msgpack == expected
    assert msgspec.to_builtins(from_msgpack) == vector["frame"]


@pytest.mark.parametrize("vector", CLIENT, ids=_ids(CLIENT))
def test_client_vector_decodes_to_its_typed_frame(vector: Vector) -> None:
    expected_cls = CLIENT_TAGS[vector["frame"]["type"]]
    decoded = [
        JSON.decode(vector["json"]),  # a text WebSocket message
        JSON.decode(vector["json"].encode("utf-8")),  # a binary one, or an HTTP body
        MSGPACK.decode(bytes.fromhex(vector["msgpack_hex"])),
    ]
    for frame in decoded:
        assert type(frame) is expected_cls
        assert msgspec.to_builtins(frame) == vector["frame"]
    assert decoded[0] == decoded[1] == decoded[2]


@pytest.mark.parametrize("vector", CLIENT, ids=_ids(CLIENT))
def test_client_vector_reencodes_to_the_stored_bytes(vector: Vector) -> None:
    frame = MSGPACK.decode(bytes.fromhex(vector["msgpack_hex"]))
    assert msgspec.json.encode(frame) == vector["json"].encode("utf-8")
    assert msgspec.msgpack.encode(frame).hex() == vector["msgpack_hex"]


# --- invalid and tolerated input ------------------------------------------------------------


@pytest.mark.parametrize("vector", INVALID, ids=_ids(INVALID))
def test_invalid_vector_gets_its_error(vector: Vector) -> None:
    inputs = _inputs(vector)
    assert inputs, "an invalid vector needs json or msgpack_hex"
    for codec_name, data in inputs:
        codec = JSON if codec_name == "json" else MSGPACK
        with pytest.raises(PeerError) as caught:
            codec.decode(data)
        assert (caught.value.code, caught.value.ref) == (vector["code"], vector["ref"]), codec_name
        assert caught.value.message


@pytest.mark.parametrize("vector", TOLERANT_CLIENT, ids=_ids(TOLERANT_CLIENT))
def test_tolerated_client_input_decodes_to_its_frame(vector: Vector) -> None:
    for codec_name, data in _inputs(vector):
        codec = JSON if codec_name == "json" else MSGPACK
        assert msgspec.to_builtins(codec.decode(data)) == vector["frame"], codec_name


@pytest.mark.parametrize("vector", TOLERANT_SERVER, ids=_ids(TOLERANT_SERVER))
def test_tolerated_server_input_decodes_or_is_ignored(vector: Vector) -> None:
    for codec_name, data in _inputs(vector):
        decode = msgspec.json.decode if codec_name == "json" else msgspec.msgpack.decode
        if vector["frame"] is None:
            # A frame type a client does not know: decoding it as a known frame must fail,
            # which is the client's cue to skip it.
            assert decode(data)["type"] not in SERVER_TAGS
            with pytest.raises(msgspec.ValidationError):
                decode(data, type=ServerFrame)
        else:
            frame = decode(data, type=ServerFrame)
            assert msgspec.to_builtins(frame) == vector["frame"], codec_name
