"""``rtserver token`` and the open-mode rule of ``rtserver serve``."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rtserver.auth.tokens import RoomTokens
from rtserver.cli import main

SECRET = "cli-secret-" + "z" * 40


def test_token_prints_a_token_the_server_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RTSERVER_SECRET", SECRET)
    argv = ["token", "--room", "a", "--room", "team-*", "--role", "viewer", "--sub", "s1"]
    assert main([*argv, "--name", "Ann", "--models", "x, y", "--ttl", "30m"]) == 0
    claims = RoomTokens(secret=SECRET).verify(capsys.readouterr().out.strip())
    assert (claims.sub, claims.rooms, claims.role, claims.name, claims.models) == (
        "s1",
        ["a", "team-*"],
        "viewer",
        "Ann",
        ["x", "y"],
    )


def test_token_reads_the_secret_from_the_variable_the_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "rt.toml"
    config.write_text('[auth]\nsecret_env = "MY_ROOM_SECRET"\n')
    monkeypatch.delenv("RTSERVER_SECRET", raising=False)
    monkeypatch.setenv("MY_ROOM_SECRET", SECRET)
    assert main(["token", "--room", "r", "--config", str(config)]) == 0
    assert RoomTokens(secret=SECRET).verify(capsys.readouterr().out.strip()).sub == "cli"


@pytest.mark.parametrize(
    ("env", "argv", "words"),
    [
        ({}, [], "RTSERVER_SECRET is not set"),
        ({"RTSERVER_SECRET": "short"}, [], "at least 32"),
        ({"RTSERVER_SECRET": SECRET}, ["--ttl", "soon"], "--ttl"),
        ({"RTSERVER_SECRET": SECRET}, ["--ttl", "0"], "--ttl"),
    ],
)
def test_token_exits_2_with_a_clear_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    argv: list[str],
    words: str,
) -> None:
    monkeypatch.delenv("RTSERVER_SECRET", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["token", "--room", "r", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("rtserver: ")
    assert words in captured.err


def test_serve_off_loopback_without_a_secret_exits_2_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RTSERVER_SECRET", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "open mode" in err
    assert "RTSERVER_SECRET" in err
    assert "--open" in err
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("how", ["flag", "config"])
def test_serve_off_loopback_open_on_purpose_goes_on_to_bind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    monkeypatch.delenv("RTSERVER_SECRET", raising=False)
    config = tmp_path / "rt.toml"
    config.write_text("[auth]\nopen = true\n" if how == "config" else "")
    extra = ["--open"] if how == "flag" else []
    # The port is taken, so the server stops at binding: past the open-mode rule, not before.
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ["serve", "--host", "0.0.0.0", "--port", port, "--config", str(config)]
        assert main([*argv, "--db", str(tmp_path / "x.db"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rtserver: cannot serve on http://0.0.0.0:{port}/"), err


def test_serve_off_loopback_with_a_secret_goes_on_to_bind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RTSERVER_SECRET", SECRET)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ["serve", "--host", "0.0.0.0", "--port", port, "--db", str(tmp_path / "x.db")]
        assert main(argv) == 2
    assert "cannot serve" in capsys.readouterr().err
