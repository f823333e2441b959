"""Codec behaviour the vectors do not show: transport rules, error wording, encode-once."""

from __future__ import annotations

import msgspec
import pytest

from rtserver.errors import PeerError
from rtserver.protocol.codec import (
    JSON,
    JSON_SUBPROTOCOL,
    MSGPACK,
    MSGPACK_SUBPROTOCOL,
    SUBPROTOCOLS,
    Codec,
    EventAt,
    Outgoing,
    _json_codec,
    _msgpack_codec,
    codec_for,
)
from rtserver.protocol.frames import (
    ClientFrame,
    ErrorFrame,
    Ping,
    Prompt,
    ServerFrame,
    StreamEnd,
    TokenEvent,
    Typing,
)


def _fresh(codec_name: str) -> Codec:
    """A codec built now, as the module builds JSON and MSGPACK at import.

    The error tests decode with these, so what builds a codec is under test too, and not only
    what it was when the module was imported.
    """
    return _json_codec() if codec_name == "json" else _msgpack_codec()


def _error(codec_name: str, data: str | bytes) -> PeerError:
    codec = _fresh(codec_name)
    with pytest.raises(PeerError) as caught:
        codec.decode(data)
    return caught.value


def _msgpack(value: object) -> bytes:
    return msgspec.msgpack.encode(value)


# --- choosing a codec -----------------------------------------------------------------------


def test_subprotocols_are_the_two_of_v1() -> None:
    assert SUBPROTOCOLS == ("rt.v1.json", "rt.v1.msgpack")
    assert (JSON.name, JSON.binary) == (JSON_SUBPROTOCOL, False)
    assert (MSGPACK.name, MSGPACK.binary) == (MSGPACK_SUBPROTOCOL, True)
    for built, module_codec in ((_fresh("json"), JSON), (_fresh("msgpack"), MSGPACK)):
        assert (built.name, built.binary) == (module_codec.name, module_codec.binary)
        frame = TokenEvent(seq=1, stream="s", text="t")
        assert built.render(frame, ("e", 1)) == module_codec.render(frame, None)
        assert built.decode(module_codec.render(Ping(id="a"), None)) == Ping(id="a")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("codec_name", "data", "message"),
    [
        ("json", "[1, 2]", "a frame must be a map with a string `type`"),
        ("json", '{"type": 7, "id": "x"}', "a frame must have a string `type`"),
        ("msgpack", msgspec.msgpack.encode(3), "a frame must be a map with a string `type`"),
        ("msgpack", msgspec.msgpack.encode({"type": None}), "a frame must have a string `type`"),
        ("json", b"{", "frame is not valid JSON"),
        ("msgpack", b"\xc1", "frame is not valid MessagePack"),
        ("msgpack", "{}", "rt.v1.msgpack frames must be binary messages"),
    ],
)
def test_error_messages_say_exactly_what_is_wrong(
    codec_name: str, data: str | bytes, message: str
) -> None:
    assert _error(codec_name, data).message == message


def test_a_validation_message_names_the_frame_then_msgspecs_detail() -> None:
    error = _error("json", msgspec.json.encode({"type": "prompt", "id": "p", "text": ["x"]}))
    assert error.message == "invalid prompt frame: Expected `str`, got `array` - at `$.text`"


@pytest.mark.parametrize(
    ("offered", "expected"),
    [(None, "rt.v1.json"), ("", "rt.v1.json"), ("rt.v1.json", "rt.v1.json"),
     ("rt.v1.msgpack", "rt.v1.msgpack"), ("rt.v2.msgpack", "rt.v1.json")],
)  # fmt: skip
def test_codec_for_falls_back_to_json(offered: str | None, expected: str) -> None:
    assert codec_for(offered).name == expected


# --- decoding -------------------------------------------------------------------------------


def test_msgpack_codec_rejects_text_messages() -> None:
    error = _error("msgpack", '{"type":"ping"}')
    assert error.code == "bad_frame"
    assert "binary" in error.message


def test_msgpack_codec_rejects_json_bytes() -> None:
    # Bytes that are JSON, not MessagePack: a JSON client on a msgpack connection.
    error = _error("msgpack", b'{"type":"ping"}')
    assert error.code == "bad_frame"


def test_json_codec_reads_text_and_bytes_alike() -> None:
    text = '{"type":"prompt","id":"p-1","text":"h\\u00e9 🙂"}'
    assert JSON.decode(text) == JSON.decode(text.encode()) == Prompt(id="p-1", text="hé 🙂")


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ('{"type":"prompt","id":"p","text":1}', ["prompt", "$.text"]),
        ('{"type":"prompt","id":"p","text":"x","params":{"temperature":3}}',
         ["prompt", "$.params.temperature"]),
        ('{"type":"prompt","id":"p","text":"x","models":["a",""]}', ["prompt", "$.models[1]"]),
        ('{"type":"hello","since":{"epoch":"e"}}', ["hello", "seq"]),
        ('{"type":"typing"}', ["typing", "active"]),
    ],
)  # fmt: skip
def test_json_error_messages_name_the_frame_and_field(data: str, names: list[str]) -> None:
    error = _error("json", data)
    assert error.code == "bad_frame"
    for name in names:
        assert name in error.message


def test_msgpack_error_messages_name_the_field_too() -> None:
    error = _error("msgpack", _msgpack({"type": "cancel", "id": "c", "stream": 5}))
    assert (error.code, error.ref) == ("bad_frame", "c")
    assert "$.stream" in error.message


@pytest.mark.parametrize(
    ("codec_name", "data", "fragment"),
    [
        ("json", b"\xff\xfe{}", "not valid JSON"),
        ("json", '{"type":"ping"', "not valid JSON"),
        ("json", "", "not valid JSON"),
        ("msgpack", b"\xc1", "not valid MessagePack"),
        ("msgpack", b"", "not valid MessagePack"),
    ],
)
def test_undecodable_input_is_a_bad_frame(
    codec_name: str, data: str | bytes, fragment: str
) -> None:
    error = _error(codec_name, data)
    assert (error.code, error.ref) == ("bad_frame", None)
    assert fragment in error.message


@pytest.mark.parametrize("codec_name", ["json", "msgpack"])
def test_unknown_fields_are_ignored(codec_name: str) -> None:
    value = {"type": "typing", "active": True, "id": "t", "later": {"x": [1, 2]}, "z": None}
    data = msgspec.json.encode(value) if codec_name == "json" else _msgpack(value)
    assert _fresh(codec_name).decode(data) == Typing(id="t", active=True)


@pytest.mark.parametrize("codec_name", ["json", "msgpack"])
def test_unknown_type_keeps_the_ref(codec_name: str) -> None:
    value = {"type": "retract", "id": "r-1", "model": "demo"}
    data = msgspec.json.encode(value) if codec_name == "json" else _msgpack(value)
    error = _error(codec_name, data)
    assert (error.code, error.ref) == ("unknown_type", "r-1")
    assert "retract" in error.message


@pytest.mark.parametrize("bad_id", ["", "x" * 129, 7, ["a"], None])
def test_an_invalid_id_is_not_echoed_as_ref(bad_id: object) -> None:
    error = _error("json", msgspec.json.encode({"type": "prompt", "id": bad_id, "text": "hi"}))
    assert (error.code, error.ref) == ("bad_frame", None)


def test_a_valid_id_is_echoed_even_when_the_type_is_missing() -> None:
    error = _error("json", '{"id":"x-1","text":"hi"}')
    assert (error.code, error.ref) == ("bad_frame", "x-1")


def test_error_messages_stay_short_whatever_the_input() -> None:
    huge_type = "t" * 10_000
    assert len(_error("json", msgspec.json.encode({"type": huge_type})).message) <= 200
    huge_models = {"type": "prompt", "id": "p", "text": "x", "models": ["m" * 5000] * 40}
    assert len(_error("json", msgspec.json.encode(huge_models)).message) <= 300


def test_decoded_frames_are_typed_and_frozen() -> None:
    frame: ClientFrame = JSON.decode('{"type":"ping","id":"a"}')
    assert frame == Ping(id="a")
    with pytest.raises(AttributeError):
        frame.id = "b"  # type: ignore[misc]


# --- encoding -------------------------------------------------------------------------------


def test_defaults_are_left_out_but_always_sent_nulls_are_not() -> None:
    error = msgspec.json.decode(JSON.encode(ErrorFrame(code="internal", message="m")))
    assert error == {"type": "error", "code": "internal", "message": "m"}
    end = StreamEnd(
        seq=1,
        stream="s",
        reason="cancelled",
        usage=None,
        ttft_ms=None,
        duration_ms=5,
        tokens_per_s=None,
    )
    decoded = msgspec.msgpack.decode(MSGPACK.encode(end))
    assert decoded["usage"] is None
    assert decoded["ttft_ms"] is None
    assert decoded["tokens_per_s"] is None
    assert "error" not in decoded


def test_type_is_the_first_key() -> None:
    # Not a protocol rule (receivers take any order), but rtserver's output is stable.
    assert JSON.encode(TokenEvent(seq=1, stream="s", text="x")).startswith(b'{"type":"token"')


@pytest.mark.parametrize("codec_name", ["json", "msgpack"])
def test_render_ignores_where_the_event_stands(codec_name: str) -> None:
    # The event id is for transports that name events (SSE); these codecs carry the seq inside.
    codec = JSON if codec_name == "json" else MSGPACK
    frame = TokenEvent(seq=3, stream="s", text="x")
    assert codec.render(frame, ("ep", 3)) == codec.render(frame, None) == codec.encode(frame)


# --- encode once per codec ------------------------------------------------------------------


class CountingCodec:
    """A codec that records every render call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.binary = False
        self.calls: list[tuple[ServerFrame, EventAt | None]] = []

    def render(self, frame: ServerFrame, at: EventAt | None) -> bytes:
        self.calls.append((frame, at))
        return f"{self.name}:{len(self.calls)}".encode()

    def decode(self, data: str | bytes) -> ClientFrame:
        raise NotImplementedError


def test_outgoing_encodes_once_per_codec() -> None:
    frame = TokenEvent(seq=9, stream="s", text="tok")
    out = Outgoing(frame, ("ep", 9))
    first, second = CountingCodec("a"), CountingCodec("b")
    results = [out.data(first) for _ in range(100)] + [out.data(second) for _ in range(100)]
    assert first.calls == [(frame, ("ep", 9))]
    assert second.calls == [(frame, ("ep", 9))]
    assert set(results) == {b"a:1", b"b:1"}


def test_outgoing_gives_every_participant_the_same_bytes_object() -> None:
    out = Outgoing(TokenEvent(seq=1, stream="s", text="x"))
    assert out.data(JSON) is out.data(JSON)
    assert out.data(MSGPACK) is out.data(MSGPACK)
    assert out.data(JSON) != out.data(MSGPACK)


def test_separate_outgoings_encode_separately() -> None:
    codec = CountingCodec("a")
    for seq in (1, 2, 3):
        Outgoing(TokenEvent(seq=seq, stream="s", text="x")).data(codec)
    assert [frame.seq for frame, _ in codec.calls if isinstance(frame, TokenEvent)] == [1, 2, 3]
