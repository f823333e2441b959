"""The shared part of the error mapping: retry-after headers and the status table."""

from __future__ import annotations

import pytest

from rtserver.providers.errors import MAX_RETRY_AFTER_S, from_status, retry_after

NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "retry-after": "20"}, 1.5),
        ({"retry-after": "Thu, 01 Jan 2026 00:00:42 GMT"}, 42.0),
        ({"retry-after": "Wed, 31 Dec 2025 23:59:00 GMT"}, 0.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "86400000"}, MAX_RETRY_AFTER_S),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "lots", "retry-after": "3"}, 3.0),
    ],
)
def test_retry_after_reads_seconds_milliseconds_and_dates(
    headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after(headers, now=NOW) == expected


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "provider_error"),
        (401, "provider_error"),
        (403, "provider_error"),
        (404, "provider_error"),
        (408, "provider_error"),
        (413, "too_large"),
        (422, "provider_error"),
        (429, "rate_limited"),
        (500, "provider_error"),
        (502, "provider_error"),
        (503, "busy"),
        (529, "busy"),
    ],
)
def test_statuses_map_to_our_codes(status: int, code: str) -> None:
    error = from_status(status, headers={"retry-after": "4"}, model="m", key_env="K")
    assert error.code == code
    assert error.retry_after == (4.0 if code in ("rate_limited", "busy") else None)
