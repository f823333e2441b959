"""Which names under /static/ are served: regular files inside the directory, nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtserver.transports.static import existing_file


@pytest.fixture
def root(tmp_path: Path) -> Path:
    served = tmp_path / "static"
    (served / "lib").mkdir(parents=True)
    (served / "app.js").write_text("app")
    (served / "lib" / "x.js").write_text("x")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", served / "out.txt")
    os.symlink(served / "app.js", served / "alias.js")
    os.symlink(served / "loop", served / "loop")
    return served.resolve()


@pytest.mark.parametrize(
    ("name", "served"),
    [
        ("app.js", "app.js"),
        ("lib/x.js", "lib/x.js"),
        ("lib/../app.js", "app.js"),
        ("alias.js", "app.js"),  # a link that stays inside
        ("", None),
        ("lib", None),  # a directory: no listings
        ("nope.js", None),
        ("../secret.txt", None),
        ("lib/../../secret.txt", None),
        ("out.txt", None),  # a link that leads out
        ("loop", None),
        ("/etc/passwd", None),
        ("app.js\0.png", None),
        ("x" * 5000, None),
    ],
)
def test_only_regular_files_inside_the_directory(root: Path, name: str, served: str | None) -> None:
    assert existing_file(root, name) == (None if served is None else root / served)
