"""The decoders' nesting bound: a fixed depth, the same for JSON and MessagePack, never a fault."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from rtserver.errors import PeerError
from rtserver.protocol.codec import JSON, MSGPACK, _MsgspecCodec
from rtserver.protocol.frames import Ping, Prompt
from rtserver.protocol.nesting import MAX_NESTING, check_nesting

CODECS = [JSON, MSGPACK]


def _nested(levels: int) -> Any:
    """A value of ``levels`` nested arrays and maps, alternating, innermost empty."""
    value: Any = []
    for level in range(levels - 1):
        value = [value] if level % 2 else {"k": value}
    return value


def _encode(codec: _MsgspecCodec, frame: dict[str, Any]) -> bytes:
    return msgspec.msgpack.encode(frame) if codec.binary else msgspec.json.encode(frame)


def _raw_depth(codec: _MsgspecCodec, levels: int) -> bytes:
    """A ping whose unknown field nests ``levels - 1`` arrays, written without recursion."""
    inner = levels - 1
    if codec.binary:
        return b"\x82\xa4type\xa4ping\xa1x" + b"\x91" * (inner - 1) + b"\x90"
    return b'{"type":"ping","x":' + b"[" * inner + b"]" * inner + b"}"


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_a_frame_at_the_limit_is_accepted(codec: _MsgspecCodec) -> None:
    frame = {"type": "ping", "id": "p", "x": _nested(MAX_NESTING - 1)}
    assert codec.decode(_encode(codec, frame)) == Ping(id="p")


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize("levels", [MAX_NESTING + 1, 100, 1_000, 100_000])
def test_a_frame_past_the_limit_is_bad_frame_naming_the_depth(
    codec: _MsgspecCodec, levels: int
) -> None:
    with pytest.raises(PeerError) as refused:
        codec.decode(_raw_depth(codec, levels))
    assert refused.value.code == "bad_frame"
    assert f"more than {MAX_NESTING} levels" in refused.value.message


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_depth_counts_maps_and_arrays_alike(codec: _MsgspecCodec) -> None:
    ok = {"type": "ping", "x": _nested(MAX_NESTING - 1)}
    too_deep = {"type": "ping", "x": [_nested(MAX_NESTING - 1)]}
    codec.decode(_encode(codec, ok))
    with pytest.raises(PeerError, match="levels deep"):
        codec.decode(_encode(codec, too_deep))


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_deep_nesting_in_a_typed_field_is_bad_frame_too(codec: _MsgspecCodec) -> None:
    """A deep value where the frame wants a string fails on depth, not in the explanation."""
    data = _encode(codec, {"type": _nested(500), "id": "x"})
    with pytest.raises(PeerError) as refused:
        codec.decode(data)
    assert refused.value.code == "bad_frame"


def test_brackets_inside_json_strings_do_not_count() -> None:
    text = '"\\"' + "[" * 100 + "{" * 100 + "\\\\"
    frame = JSON.decode(b'{"type":"prompt","id":"a","text":' + text.encode() + b'"}')
    assert isinstance(frame, Prompt)
    assert frame.text.count("[") == 100


def test_wide_but_shallow_frames_pass_quickly_enough_to_decode() -> None:
    """Many containers side by side are not depth: 200,000 empty arrays pass."""
    wide = {"type": "ping", "x": [[] for _ in range(200_000)]}
    for codec in CODECS:
        assert codec.decode(_encode(codec, wide)) == Ping()


def test_msgpack_values_json_cannot_hold_are_measured_too() -> None:
    deep_key: Any = (1,)
    for _ in range(MAX_NESTING + 5):
        deep_key = (deep_key,)
    shallow = msgspec.msgpack.encode(
        {"type": "ping", "x": {(1, 2): msgspec.msgpack.Ext(1, b"z")}, "y": [[[]]]}
    )
    assert MSGPACK.decode(shallow) == Ping()
    with pytest.raises(PeerError, match="levels deep"):
        MSGPACK.decode(msgspec.msgpack.encode({"type": "ping", "x": {deep_key: 1}, "y": [[[]]]}))


def test_check_nesting_passes_small_frames_without_decoding() -> None:
    # Not valid JSON at all: with fewer openers than the limit it cannot be too deep.
    check_nesting(b"[[[ not json", msgpack=False)
    check_nesting(b"\x91\x91\x91", msgpack=True)


def _keyed(levels: int) -> bytes:
    """A MessagePack ping nesting ``levels`` deep through arrays used as map keys (which JSON
    cannot hold), beside more shallow arrays than the limit, so that its depth is measured."""
    key: Any = ()
    for _ in range(levels - 3):  # the ping's map, the map under "x", the key's own array
        key = (key,)
    wide: list[list[int]] = [[] for _ in range(MAX_NESTING + 1)]
    return msgspec.msgpack.encode({"type": "ping", "x": {key: 1}, "y": wide})


def test_keys_of_arrays_count_exactly_up_to_the_limit() -> None:
    assert MSGPACK.decode(_keyed(MAX_NESTING)) == Ping()
    with pytest.raises(PeerError, match="levels deep"):
        MSGPACK.decode(_keyed(MAX_NESTING + 1))
    assert MSGPACK.decode(_keyed(3)) == Ping(), "a shallow key passes the walk too"
