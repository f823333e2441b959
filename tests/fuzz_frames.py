"""Hypothesis strategies for hostile client input: frames of every type, bent every way.

Shared by the codec fuzz tests (tests/unit/test_fuzz_codec.py) and the transport fuzz tests
(tests/integration/test_fuzz_transports.py).
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import strategies as st

from rtserver.protocol.frames import CLIENT_TYPES

#: Numbers that break naive decoders: past 64 bits, past doubles, signed zero, specials.
HUGE_INTEGERS = st.sampled_from([2**53, 2**63 - 1, 2**63, 2**64 - 1, 2**64 + 1, -(2**63) - 1])
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [1e308, -1e308, 5e-324, -0.0, 0.0]
)
#: Text from every plane, controls and combining marks included (no lone surrogates: those
#: are not text in either encoding; the raw-byte strategies send them).
TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", " ", "\u202e\u0645\u0631\u062d\u0628\u0627", "e\u0301" * 20, "\U0001f600" * 10, "\x00"]
)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | HUGE_INTEGERS
    | FLOATS
    | TEXT
)

#: Any JSON-like value, shallow or nested some levels.
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def deep(levels: int, *, inner: Any = None) -> Any:
    """``levels`` of arrays and maps, alternating, built without recursion."""
    value: Any = inner
    for level in range(levels):
        value = {"k": value} if level % 2 else [value]
    return value


DEEP_VALUES = st.builds(deep, st.integers(1, 1_500), inner=SCALARS)

#: Plausible values for each field a client frame has, mixed with anything at all.
_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "hello": {
        "name": TEXT,
        "token": TEXT,
        "since": st.fixed_dictionaries({"epoch": TEXT, "seq": st.integers(-5, 2**64 + 5) | FLOATS}),
    },
    "prompt": {
        "text": TEXT,
        "models": st.lists(st.sampled_from(["quick", "nope", ""]) | TEXT, max_size=40),
        "params": st.fixed_dictionaries(
            {},
            optional={
                "temperature": FLOATS | HUGE_INTEGERS | TEXT,
                "max_tokens": st.integers(-5, 2**64 + 1) | FLOATS,
            },
        ),
    },
    "cancel": {"stream": TEXT, "model": st.sampled_from(["quick", "nope"]) | TEXT},
    "interrupt": {
        "text": TEXT,
        "models": st.lists(st.sampled_from(["quick", "nope"]), max_size=3),
    },
    "typing": {"active": st.booleans()},
    "ping": {},
}


@st.composite
def client_frames(draw: st.DrawFn) -> dict[str, Any]:
    """A map shaped like a client frame of any type, each field plausible or not, maybe deep."""
    kind = draw(st.sampled_from(sorted(CLIENT_TYPES)) | TEXT | SCALARS)
    fields = _FIELDS.get(kind, {}) if isinstance(kind, str) else {}
    frame: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        frame["id"] = draw(st.text(min_size=1, max_size=8) | VALUES)
    for name, plausible in fields.items():
        if draw(st.integers(0, 4)) == 0:
            continue  # left out
        frame[name] = draw(plausible | VALUES | DEEP_VALUES)
    frame.update(draw(st.dictionaries(TEXT, VALUES | DEEP_VALUES, max_size=2)))
    return frame


def _encode(frame: dict[str, Any], *, msgpack: bool) -> bytes | None:
    """The frame's bytes, or None if this encoder cannot write it (NaN in JSON, say)."""
    try:
        if msgpack:
            return msgspec.msgpack.encode(frame)
        return msgspec.json.encode(frame)
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError):
        return None


def _spliced_json(frame: dict[str, Any], raw_number: str) -> bytes:
    """A JSON frame with a number JSON encoders never write (``1e999``, ``-0``, ``NaN``)."""
    encoded = msgspec.json.encode(
        {k: v for k, v in frame.items() if _encode({k: v}, msgpack=False)}
    )
    return encoded[:-1] + b',"n":' + raw_number.encode() + b"}"


RAW_NUMBERS = st.sampled_from(
    [
        "1e999",
        "-1e999",
        "-0",
        "NaN",
        "Infinity",
        "1" * 400,
        "0.0000000000001e-400",
        "18446744073709551617",
    ]
)


@st.composite
def wire_inputs(draw: st.DrawFn, *, msgpack: bool) -> bytes:
    """Bytes a hostile client might send on one connection of the given encoding."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(st.binary(max_size=64))
    frame = draw(client_frames())
    if not msgpack and choice == 1:
        return _spliced_json(frame, draw(RAW_NUMBERS))
    if choice == 2:
        levels = draw(st.integers(20, 3_000))
        if msgpack:
            return b"\x82\xa4type\xa4ping\xa1x" + b"\x91" * levels + b"\xc0"
        return b'{"type":"ping","x":' + b"[" * levels + b"]" * levels + b"}"
    data = _encode(frame, msgpack=msgpack)
    if data is None:
        return _encode({"type": "ping", "id": "fallback"}, msgpack=msgpack) or b"{}"
    if choice == 3 and len(data) > 2:
        cut = draw(st.integers(1, len(data) - 1))
        return data[:cut]  # truncated
    return data
