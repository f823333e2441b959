"""The command line refuses an unusable configuration with a message, exit status 2."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from rtserver.cli import main


@pytest.fixture(autouse=True)
def no_config_from_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests here name their config; the caller's RTSERVER_CONFIG must not leak in."""
    monkeypatch.delenv("RTSERVER_CONFIG", raising=False)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read config file"),
        ("[[models]\nid = 1", "not valid TOML"),
        ('[[models]]\nid = "x"\nprovider = "nope"', "provider"),
        ("[limits]\nmax_frame_bytes = 10", "max_frame_bytes"),
    ],
)
def test_bad_config_exits_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, words: str
) -> None:
    path = tmp_path / "rtserver.toml"
    if content is not None:
        path.write_text(content)
    assert main(["serve", "--config", str(path), "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtserver: ")
    assert words in err
    assert not (tmp_path / "x.db").exists()


def test_config_path_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "env.toml"
    path.write_text('[[models]]\nid = "local"\nprovider = "demo"\nlabel = "From env"\n')
    monkeypatch.setenv("RTSERVER_CONFIG", str(path))
    assert main(["models"]) == 0
    assert "local" in capsys.readouterr().out


def test_a_port_in_use_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(["serve", "--port", str(port), "--db", str(tmp_path / "x.db")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rtserver: cannot serve on http://127.0.0.1:{port}/")


def test_an_unknown_log_level_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--log-level", "chatty"])
    assert exited.value.code == 2
    assert "--log-level" in capsys.readouterr().err


def test_command_line_flags_win_over_the_server_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from_file, from_flag = tmp_path / "from-file.db", tmp_path / "from-flag.db"
    # Both addresses are taken, so whichever wins, the server stops at once and says which.
    with socket.socket() as file_taken, socket.socket() as flag_taken:
        for taken in (file_taken, flag_taken):
            taken.bind(("127.0.0.1", 0))
            taken.listen()
        file_port, flag_port = file_taken.getsockname()[1], flag_taken.getsockname()[1]
        config = tmp_path / "rtserver.toml"
        config.write_text(f'[server]\nhost = "localhost"\nport = {file_port}\ndb = "{from_file}"\n')
        argv = ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(flag_port)]
        status = main([*argv, "--db", str(from_flag)])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rtserver: cannot serve on http://127.0.0.1:{flag_port}/"), err
    # The port is checked before the database is opened: only the winner's lock was taken.
    assert Path(f"{from_flag}.lock").exists()
    assert not Path(f"{from_file}.lock").exists()
    assert not from_flag.exists()


def test_serve_leaves_the_root_logger_as_it_found_it(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["serve", "--port", str(port), "--db", str(tmp_path / "x.db")]
        assert main([*argv, "--log-level", "debug"]) == 2
    assert (root.handlers, root.level) == (handlers, level)


def test_a_function_tool_that_cannot_be_imported_exits_2_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rtserver.toml"
    path.write_text('[[tools]]\nid = "x"\nkind = "python"\nfunction = "no_such_module:f"\n')
    argv = ["serve", "--config", str(path), "--port", "0", "--db", str(tmp_path / "x.db")]
    assert main(argv) == 2
    printed = capsys.readouterr()
    assert "tool 'x': cannot import 'no_such_module'" in printed.err
    assert "serving on" not in printed.out
