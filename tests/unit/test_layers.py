"""The arrows between the layers (docs/explanation/architecture.md), read from the imports.

transports -> turns -> room -> protocol; turns -> providers, tools and store. The room never imports
config, turns, transports, providers or a store; protocol imports none of the layers above it;
turns never imports a transport; the bus (several nodes) never imports turns or transports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rtserver"

FORBIDDEN = {
    "room": ("config", "turns", "transports", "store", "providers", "bus"),
    "protocol": ("config", "room", "turns", "transports", "store", "providers", "auth", "ops"),
    "turns": ("transports",),
    # The bus carries rooms' events between nodes; what they mean is the turns layer's.
    "bus": ("turns", "transports", "providers"),
    # Tools are called by the turns layer and know nothing of rooms, turns or sockets.
    "tools": ("room", "turns", "transports", "store", "providers"),
}


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _offends(name: str, layers: tuple[str, ...]) -> bool:
    return any(
        name == f"rtserver.{layer}" or name.startswith(f"rtserver.{layer}.") for layer in layers
    )


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_it_must_not(layer: str) -> None:
    modules = sorted((PACKAGE / layer).glob("*.py"))
    assert modules, f"no modules in rtserver/{layer}"
    offences = {
        module.name: sorted(n for n in imported(module) if _offends(n, FORBIDDEN[layer]))
        for module in modules
    }
    assert {name: found for name, found in offences.items() if found} == {}


def test_the_check_sees_an_offending_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(
        "def f():\n    from rtserver.config import Limits\n    import rtserver.store.base\n"
    )
    found = {n for n in imported(module) if _offends(n, FORBIDDEN["room"])}
    assert found == {"rtserver.config", "rtserver.config.Limits", "rtserver.store.base"}
