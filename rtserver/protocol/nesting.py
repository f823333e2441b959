"""How deep a client frame nests maps and arrays, checked before anything acts on it.

Pure code. msgspec decodes recursively in C and gives up with a ``RecursionError`` somewhere
near Python's recursion limit, a depth that depends on how deep the caller's stack already is.
The protocol promises a fixed bound instead, checked here, so that a frame nested a thousand
levels is refused with a clear ``bad_frame`` whatever the stack, and never escapes as a fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from rtserver.errors import PeerError

#: Deepest nesting of maps and arrays in a client frame, the frame's own map counting as 1.
#: No frame of protocol v1 needs more than 3; unknown fields get the room this leaves.
MAX_NESTING: Final = 32

#: Bytes that may open a JSON container.
_JSON_OPENERS: Final = (b"[", b"{")
#: Bytes that are, or may be mistaken for, the header of a MessagePack map or array
#: (fixmap, fixarray, array 16/32, map 16/32). Payload bytes in that range only overcount.
_MSGPACK_HEADERS: Final = bytes(range(0x80, 0xA0)) + bytes(range(0xDC, 0xE0))
_NOT_MSGPACK_HEADERS: Final = bytes(b for b in range(256) if b not in _MSGPACK_HEADERS)

_Container = list[Any] | tuple[Any, ...] | dict[Any, Any]
_CONTAINERS: Final = (list, tuple, dict)

#: A JSON string, escapes included (the unrolled form, which ``re`` matches without backtracking).
_JSON_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
#: Keeps only brackets, and makes both kinds one: ``{}`` nest as ``[]`` do.
_BRACKETS_ONLY: Final = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")

#: Encodes what JSON has no form for (MessagePack extension types) as null.
_encode_json = msgspec.json.Encoder(enc_hook=lambda _: None).encode
_decode_msgpack = msgspec.msgpack.Decoder().decode


def too_deep_error() -> PeerError:
    return PeerError(
        "bad_frame", f"the frame nests maps and arrays more than {MAX_NESTING} levels deep"
    )


def check_nesting(data: bytes, *, msgpack: bool) -> None:
    """Raise ``bad_frame`` when ``data`` nests deeper than :data:`MAX_NESTING`.

    ``data`` must be well formed (the caller decoded it first). A frame that cannot hold that
    many containers passes at once; JSON is measured on its brackets, MessagePack by decoding.
    """
    if _containers_at_most(data, msgpack=msgpack) <= MAX_NESTING:
        return
    json = _msgpack_as_json(data) if msgpack else data
    if json is None or _json_depth_exceeds(json, MAX_NESTING):
        raise too_deep_error()


def _msgpack_as_json(data: bytes) -> bytes | None:
    """The same nesting written as JSON, so both codecs are measured alike; None if too deep.

    Transcoding is C code, many times faster than walking the decoded values in Python; only
    values JSON cannot hold as keys (arrays as map keys) fall back to that walk.
    """
    try:
        value = _decode_msgpack(data)
    except RecursionError:
        return None
    except msgspec.DecodeError:
        return b"{}"  # malformed, which the caller's own decoding names
    try:
        return _encode_json(value)
    except (TypeError, ValueError, RecursionError):
        return None if _depth_exceeds(value, MAX_NESTING) else b"{}"


def _containers_at_most(data: bytes, *, msgpack: bool) -> int:
    """An upper bound on how many maps and arrays ``data`` holds, found at C speed."""
    if msgpack:
        return len(data.translate(None, _NOT_MSGPACK_HEADERS))
    return sum(data.count(opener) for opener in _JSON_OPENERS)


def _json_depth_exceeds(data: bytes, limit: int) -> bool:
    """True when valid JSON ``data`` nests deeper than ``limit``, measured at C speed.

    With strings removed, what is left of the brackets is a balanced sequence; each pass that
    deletes every adjacent ``[]`` pair takes one level off the deepest nesting.
    """
    brackets = _JSON_STRING.sub(b"", data).translate(_BRACKETS_ONLY, _NOT_BRACKETS)
    if b"[" * (limit + 1) in brackets:
        return True
    for _ in range(limit):
        brackets = brackets.replace(b"[]", b"")
        if not brackets:
            return False
    return True


def _depth_exceeds(value: object, limit: int) -> bool:
    """True when ``value`` nests containers deeper than ``limit``; level by level, no recursion.

    Map keys count: MessagePack decodes an array used as a key into a tuple.
    """
    level: list[_Container] = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[_Container] = []
        for container in level:
            children: Iterable[object] = container
            if isinstance(container, dict):
                below.extend(key for key in container if isinstance(key, _CONTAINERS))
                children = container.values()
            below.extend(child for child in children if isinstance(child, _CONTAINERS))
        level = below
    return False
