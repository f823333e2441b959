"""``--redis`` and ``[bus]``: several nodes need a Redis URL and a store they share."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtserver.bus.selection import describe_redis
from rtserver.config import build_settings, read_config_file
from rtserver.errors import ConfigError

PG = "postgresql://127.0.0.1/test"


def test_the_flag_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "rtserver.toml"
    config.write_text(
        f'[server]\ndb = "{PG}"\n[bus]\nredis_url = "redis://file:6379/0"\nkey_prefix = "prod"\n'
    )
    from_file = build_settings(read_config_file(config), env={})
    assert (from_file.redis_url, from_file.bus_prefix) == ("redis://file:6379/0", "prod")
    flagged = build_settings(read_config_file(config), env={}, redis_url="redis://flag:1/0")
    assert flagged.redis_url == "redis://flag:1/0"
    assert build_settings(env={}).redis_url is None


def test_several_nodes_on_an_sqlite_file_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"--db postgresql://"):
        build_settings(env={}, redis_url="redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigError, match=r"--db postgresql://"):
        build_settings(env={}, db_path="rooms.db", redis_url="redis://127.0.0.1:6379/0")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:6379", "127.0.0.1:6379", "", "redis:/x", "redis://" + "a" * 4096]
)
def test_what_is_not_a_redis_url_is_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="redis://"):
        build_settings(env={}, db_path=PG, redis_url=url or "x")
    config = tmp_path / "rtserver.toml"
    config.write_text(f'[bus]\nredis_url = "{url}"\n')
    with pytest.raises(ConfigError, match="redis_url"):
        read_config_file(config)


def test_a_hostile_key_prefix_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "rtserver.toml"
    config.write_text('[bus]\nkey_prefix = "a b*{}"\n')
    with pytest.raises(ConfigError, match="key_prefix"):
        read_config_file(config)


def test_a_redis_url_is_described_without_its_password() -> None:
    assert describe_redis("redis://:hunter2@db.internal:6380/2") == "redis://db.internal:6380/2"
    assert describe_redis("rediss://user:hunter2@[::1]/0") == "rediss://[::1]/0"
    assert describe_redis("unix:///run/redis.sock") == "unix:///run/redis.sock"
