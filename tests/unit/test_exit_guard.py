"""A run whose failed test leaves a thread behind still ends, with the run's own status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: A test that fails and leaves a thread that is not a daemon waiting for ever.
LEAVES_A_THREAD = """
import threading

def test_fails_and_leaves_a_thread_behind():
    threading.Thread(target=threading.Event().wait, name="left-behind").start()
    assert False
"""


def test_a_run_with_a_thread_left_behind_ends_and_names_it(tmp_path: Path) -> None:
    test_file = tmp_path / "test_left_behind.py"
    test_file.write_text(LEAVES_A_THREAD)
    env = {k: v for k, v in os.environ.items() if k != "MUTANT_UNDER_TEST"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.exit_guard",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(test_file),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,  # without the guard the run would wait for the thread for ever
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "exit_guard: 1 thread(s) still running" in done.stderr
    assert "left-behind" in done.stderr


def test_the_suites_conftest_loads_the_exit_guard() -> None:
    from tests import conftest

    assert "tests.exit_guard" in conftest.pytest_plugins
