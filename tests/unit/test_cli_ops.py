"""The command line's new parts: `chat` arguments and `serve --log-format`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rtserver.cli import main
from rtserver.ops.logging import JsonFormatter


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """`serve` configures the root logger; put pytest's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["chat"], "BASE_URL"),
        (["chat", "http://h"], "ROOM"),
        (["chat", "http://h", "r", "--models", " , "], "name at least one model"),
        (["serve", "--log-format", "xml"], "invalid choice"),
    ],
)
def test_bad_arguments_are_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert words in capsys.readouterr().err


def test_chat_passes_its_arguments_and_the_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    def fake_run_chat(base_url: str, room: str, **kwargs: Any) -> int:
        seen.update(kwargs, base_url=base_url, room=room)
        return 0

    monkeypatch.setattr("rtserver.client.tui.run_chat", fake_run_chat)
    monkeypatch.setenv("RTSERVER_TOKEN", "from-env")
    assert main(["chat", "http://h:1", "lobby", "--name", "ada", "--models", "a, b"]) == 0
    assert seen == {
        "base_url": "http://h:1",
        "room": "lobby",
        "name": "ada",
        "token": "from-env",
        "models": ["a", "b"],
    }


@pytest.mark.usefixtures("root_handlers")
def test_serve_log_format_json_makes_every_line_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = list(logging.getLogger().handlers)
    serving: list[logging.Handler] = []

    def run_app(*args: object, **kwargs: object) -> None:
        # While the server runs, the root logger writes JSON lines.
        serving.extend(logging.getLogger().handlers)
        logging.getLogger("rtserver.test").warning("hello %s", "there", extra={"room": "r9"})

    monkeypatch.setattr("rtserver.ops.serving.serve", run_app)
    assert main(["serve", "--log-format", "json", "--db", str(tmp_path / "x.db")]) == 0
    [handler] = serving
    assert isinstance(handler.formatter, JsonFormatter)
    # Once it returns, the caller has its root logger back as it was.
    assert logging.getLogger().handlers == before
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "hello there"
    assert line["room"] == "r9"
    assert line["level"] == "WARNING"
