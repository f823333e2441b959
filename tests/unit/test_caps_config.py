"""The new [limits] and [store] keys: defaults, and values out of range named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtserver.config import Limits, read_config_file
from rtserver.errors import ConfigError


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rooms_max", "0"),
        ("participants_per_room", "-1"),
        ("models_per_prompt", "0"),
        ("streams_max", "0"),
        ("context_chars", "0"),
        ("max_tokens", "0"),
        ("welcome_chars", "-1"),
        ("history_page_chars", "0"),
        ("event_log_bytes", "10"),
        ("room_memory_bytes", "10"),
        ("streams_max", '"many"'),
        ("rooms_max", "1.5"),
        ("max_tokens", "true"),
    ],
)
def test_a_cap_out_of_range_is_a_config_error_naming_it(
    tmp_path: Path, key: str, value: str
) -> None:
    config = tmp_path / "rtserver.toml"
    config.write_text(f"[limits]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=key):
        read_config_file(config)


def test_caps_are_read_from_the_limits_table(tmp_path: Path) -> None:
    config = tmp_path / "rtserver.toml"
    config.write_text("[limits]\nrooms_max = 5\nstreams_max = 7\ncontext_chars = 900\n")
    limits = read_config_file(config).limits
    assert (limits.rooms_max, limits.streams_max, limits.context_chars) == (5, 7, 900)


def test_the_defaults_leave_room_for_the_documented_uses() -> None:
    limits = Limits()
    # A 5,000-participant room joins; every prompt fits the context it is sent in.
    assert limits.participants_per_room >= 5_000
    assert limits.context_chars >= limits.max_prompt_chars
    assert limits.welcome_chars >= limits.max_prompt_chars
    assert limits.event_log_bytes <= limits.room_memory_bytes
