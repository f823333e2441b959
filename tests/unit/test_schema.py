"""protocol/frames.schema.json: current, deterministic, and in step with frames and vectors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rtserver.protocol import schema
from rtserver.protocol.frames import CLIENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors"


def _defs() -> dict[str, Any]:
    document = json.loads(schema.DEFAULT_PATH.read_text(encoding="utf-8"))
    defs: dict[str, Any] = document["$defs"]
    return defs


def test_the_schema_file_is_current() -> None:
    assert schema.DEFAULT_PATH == ROOT / "protocol" / "frames.schema.json"
    assert schema.DEFAULT_PATH.read_text(encoding="utf-8") == schema.render(), (
        "run `python -m rtserver.protocol.schema`"
    )


def test_render_is_deterministic_sorted_and_ends_with_a_newline() -> None:
    text = schema.render()
    assert text == schema.render()
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")
    assert json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text


def test_check_passes_on_a_current_file(tmp_path: Path) -> None:
    path = tmp_path / "frames.schema.json"
    assert schema.main(["--output", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == schema.render()
    assert schema.main(["--check", "--output", str(path)]) == 0


def test_check_fails_on_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "frames.schema.json"
    path.write_text(schema.render().replace('"token"', '"tokens"', 1), encoding="utf-8")
    before = path.read_text(encoding="utf-8")
    assert schema.main(["--check", "--output", str(path)]) == 1
    err = capsys.readouterr().err
    assert "stale" in err
    assert "python -m rtserver.protocol.schema" in err
    assert path.read_text(encoding="utf-8") == before  # --check never writes


def test_check_fails_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nowhere" / "frames.schema.json"
    assert schema.main(["--check", "--output", str(path)]) == 1
    assert "missing" in capsys.readouterr().err
    assert not path.exists()


def test_the_module_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rtserver.protocol.schema", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_unions_map_every_wire_type() -> None:
    defs = _defs()
    client = defs["ClientFrame"]["discriminator"]["mapping"]
    server = defs["ServerFrame"]["discriminator"]["mapping"]
    assert set(client) == CLIENT_TYPES
    assert set(server) == {
        "welcome", "message", "stream_start", "token", "tool_call", "stream_end",
        "presence", "presence_diff", "error", "pong",
        "model_switch",
        "reasoning",
        "tool_result", "tool_approval", "tool_decision",
        "unqueued",
    }  # fmt: skip
    for ref in [*client.values(), *server.values()]:
        assert ref.removeprefix("#/$defs/") in defs


def test_no_object_forbids_unknown_fields() -> None:
    # Receivers ignore unknown fields: a schema that forbade them would reject newer peers.
    assert '"additionalProperties": false' not in schema.render()


@pytest.mark.parametrize("file", ["client.json", "server.json"])
def test_vectors_fit_the_schema(file: str) -> None:
    # A light structural check (no validator dependency): every key a vector frame holds is a
    # property of its frame type, and every required property is there.
    defs = _defs()
    union = "ClientFrame" if file == "client.json" else "ServerFrame"
    mapping = defs[union]["discriminator"]["mapping"]
    vectors = json.loads((VECTORS / file).read_text(encoding="utf-8"))["vectors"]
    for vector in vectors:
        frame = vector["frame"]
        definition = defs[mapping[frame["type"]].removeprefix("#/$defs/")]
        assert set(frame) <= set(definition["properties"]), vector["name"]
        assert set(definition["required"]) <= set(frame), vector["name"]


FIX = "Run `python -m rtserver.protocol.schema` and commit the result."


def test_check_names_the_file_and_what_is_wrong_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Exact lines: a temporary path holds the test's own name, and so words like "missing".
    absent = tmp_path / "a" / "b.json"
    assert schema.main(["--check", "--output", str(absent)]) == 1
    assert capsys.readouterr().err == f"{absent} is missing. {FIX}\n"
    stale = tmp_path / "c.json"
    stale.write_text("{}\n", encoding="utf-8")
    assert schema.main(["--check", "--output", str(stale)]) == 1
    state = "stale: it differs from what rtserver/protocol/frames.py generates"
    assert capsys.readouterr().err == f"{stale} is {state}. {FIX}\n"
    empty = tmp_path / "d.json"
    empty.write_text("", encoding="utf-8")
    assert schema.main(["--check", "--output", str(empty)]) == 1
    assert capsys.readouterr().err == f"{empty} is {state}. {FIX}\n", "empty is not missing"


def test_without_output_the_committed_file_is_checked_and_folders_are_made(
    tmp_path: Path,
) -> None:
    assert schema.main(["--check"]) == 0
    target = tmp_path / "new" / "deeper" / "frames.schema.json"
    assert schema.main(["--output", str(target)]) == 0, "missing folders are made"
    assert target.read_bytes() == schema.render().encode("utf-8")


def test_the_usage_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        schema.main(["--help"])
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    assert out.startswith("usage: python -m rtserver.protocol.schema")
    assert "Generate protocol/frames.schema.json." in lines
    assert any(line.endswith(" exit 1 if the file is missing or stale") for line in lines)
    assert any(line.endswith(" schema file path") for line in lines)
