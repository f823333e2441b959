"""CloseCode against protocol/vectors/closecodes.json, and no close code written as a literal."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from rtserver.protocol.closecodes import CloseCode

ROOT = Path(__file__).resolve().parents[2]


def test_the_enum_is_exactly_the_vector_file() -> None:
    document = json.loads((ROOT / "protocol" / "vectors" / "closecodes.json").read_text())
    assert document["protocol"] == "rt.v1"
    pinned = {vector["name"]: vector["code"] for vector in document["vectors"]}
    assert pinned == {code.name: int(code) for code in CloseCode}


def _close_calls_with_literals(tree: ast.AST) -> list[int]:
    """Line numbers of ``.close(<int literal>, ...)`` or ``code=<int literal>`` calls."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        arguments = list(node.args[:1]) + [k.value for k in node.keywords if k.arg == "code"]
        is_close = isinstance(node.func, ast.Attribute) and node.func.attr == "close"
        for argument in arguments:
            literal = isinstance(argument, ast.Constant) and type(argument.value) is int
            if literal and (is_close or argument in [k.value for k in node.keywords]):
                found.append(node.lineno)
    return found


def test_the_server_closes_only_with_named_codes() -> None:
    offenders = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / "rtserver").rglob("*.py"))
        if (lines := _close_calls_with_literals(ast.parse(path.read_text())))
    }
    assert offenders == {}
