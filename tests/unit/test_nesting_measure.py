"""The nesting bound measured exactly: depth decides, not how many containers a frame holds."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from rtserver.errors import PeerError
from rtserver.protocol.codec import JSON, MSGPACK, _MsgspecCodec
from rtserver.protocol.frames import Ping
from rtserver.protocol.nesting import MAX_NESTING

CODECS = [JSON, MSGPACK]


def _arrays(levels: int) -> Any:
    """``levels`` arrays, each the only item of the one around it."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _ping(codec: _MsgspecCodec, **fields: Any) -> bytes:
    frame = {"type": "ping", "id": "p", **fields}
    return msgspec.msgpack.encode(frame) if codec.binary else msgspec.json.encode(frame)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_a_frame_at_the_limit_with_more_containers_than_the_limit_is_accepted(
    codec: _MsgspecCodec,
) -> None:
    """33 containers, 32 deep: past the quick count, so the depth itself is measured."""
    data = _ping(codec, x=_arrays(MAX_NESTING - 1), y=[])
    assert codec.decode(data) == Ping(id="p")


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_a_frame_one_past_the_limit_is_refused_though_no_run_of_openers_is_that_long(
    codec: _MsgspecCodec,
) -> None:
    """The frame's map, then ``[[], [[...]]]``: the empty array breaks the run of openers."""
    deep = [[], _arrays(MAX_NESTING - 1)]
    assert isinstance(deep[1], list)
    with pytest.raises(PeerError) as refused:
        codec.decode(_ping(codec, x=deep))
    assert refused.value.code == "bad_frame"
    assert f"more than {MAX_NESTING} levels deep" in refused.value.message
    # The same shape one level shallower is at the limit, and passes.
    assert codec.decode(_ping(codec, x=[[], _arrays(MAX_NESTING - 2)])) == Ping(id="p")
