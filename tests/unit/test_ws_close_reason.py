"""A WebSocket close reason fits the 123 bytes of a close frame and stays valid UTF-8."""

from __future__ import annotations

from rtserver.transports.ws_sink import close_reason as _close_reason


def test_a_short_reason_is_kept_whole() -> None:
    assert _close_reason("slow consumer: reconnect and resume") == (
        b"slow consumer: reconnect and resume"
    )


def test_a_long_reason_is_cut_at_123_bytes() -> None:
    assert _close_reason("x" * 200) == b"x" * 123


def test_a_cut_never_splits_a_character() -> None:
    reason = _close_reason("\u00e9" * 100)  # two bytes each: 61 fit whole, the 62nd would not
    assert reason == ("\u00e9" * 61).encode()
    assert len(reason) == 122
