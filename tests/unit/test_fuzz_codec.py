"""Property-based fuzzing of both codecs with every client frame type, bent every way.

Whatever the bytes, a codec answers a typed frame or a PeerError naming a client mistake
(``bad_frame`` or ``unknown_type``): never another exception, which a transport would turn into
``internal`` or a dropped connection. A frame it accepts can be sent on: encoding it again works,
so nothing that got in can fail later when the room broadcasts it.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtserver.errors import PeerError
from rtserver.protocol.codec import JSON, MSGPACK, _MsgspecCodec
from rtserver.protocol.frames import ClientFrame, Prompt
from rtserver.transports.chat import _parse as parse_chat
from tests.fuzz_frames import client_frames, wire_inputs

#: Deterministic, bounded runs: thousands of frames per codec, the same ones every time.
FUZZ = settings(
    max_examples=1_000,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CLIENT_MISTAKES = {"bad_frame", "unknown_type"}


def _verdict(codec: _MsgspecCodec, data: bytes) -> ClientFrame | PeerError:
    try:
        return codec.decode(data)
    except PeerError as refused:
        return refused


def _decode_or_refuse(codec: _MsgspecCodec, data: bytes) -> None:
    frame = _verdict(codec, data)
    if isinstance(frame, PeerError):
        assert frame.code in CLIENT_MISTAKES, frame.code
        assert 0 < len(frame.message) <= 300
        return
    # Accepted: the frame is well formed enough for the server to send on.
    msgspec.json.encode(frame)
    msgspec.msgpack.encode(frame)
    if isinstance(frame, Prompt):
        frame.text.encode("utf-8")


@FUZZ
@given(data=wire_inputs(msgpack=False))
def test_json_codec_never_fails_inside(data: bytes) -> None:
    _decode_or_refuse(JSON, data)


@FUZZ
@given(data=wire_inputs(msgpack=True))
def test_msgpack_codec_never_fails_inside(data: bytes) -> None:
    _decode_or_refuse(MSGPACK, data)


@FUZZ
@given(frame=client_frames())
def test_the_same_frame_gets_the_same_verdict_in_both_encodings(frame: dict[str, object]) -> None:
    """JSON and MessagePack are one protocol: accepted by one, accepted by the other."""
    try:
        as_json, as_msgpack = msgspec.json.encode(frame), msgspec.msgpack.encode(frame)
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError):
        return  # NaN, say: JSON has no way to write it
    verdicts = [_verdict(JSON, as_json), _verdict(MSGPACK, as_msgpack)]
    same = [v.code if isinstance(v, PeerError) else v for v in verdicts]
    assert same[0] == same[1]


def _as_chat(frame: dict[str, object]) -> bytes:
    """A client frame's fields as a chat request body (``message`` first, maybe replaced)."""
    try:
        return msgspec.json.encode({"message": "hi", **frame})
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError):
        return b'{"message": "hi"}'


@settings(max_examples=500, derandomize=True, deadline=None)
@given(
    body=wire_inputs(msgpack=False)
    | st.builds(
        lambda f: msgspec.json.encode(f), client_frames().map(lambda f: {"message": "hi", **f})
    )
)
def test_chat_requests_never_fail_inside(body: bytes) -> None:
    code = None
    try:
        parse_chat(body)
    except PeerError as refused:
        code = refused.code
    assert code in (None, "bad_frame")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"prompt","id":"a","text":"x","params":{"max_tokens":18446744073709551617}}',
        b'{"type":"prompt","id":"a","text":"x","params":{"temperature":1e308}}',
        b'{"type":"prompt","id":"a","text":"x","params":{"temperature":1e999}}',
        b'{"type":"hello","since":{"epoch":"e","seq":18446744073709551617}}',
        b'{"type":"ping","x":-0,"y":1e999,"z":123456789012345678901234567890}',
        b'{"type":"ping","id":"\\ud800"}',
    ],
)
def test_huge_numbers_and_odd_text_get_a_clear_answer(raw: bytes) -> None:
    _decode_or_refuse(JSON, raw)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.0, 2**64 - 1, -(2**63)])
def test_msgpack_specials_in_typed_fields_get_a_clear_answer(value: float) -> None:
    frame = {"type": "prompt", "id": "a", "text": "x", "params": {"temperature": value}}
    _decode_or_refuse(MSGPACK, msgspec.msgpack.encode(frame))
