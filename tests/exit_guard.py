"""A pytest plugin that makes every run end, pass or fail, soon after its last test.

A test that fails half-way can leave a thread behind that is not a daemon (aiosqlite runs each
connection in one): Python's exit then waits for it for ever, and so would ``make test`` and
CI. After the summary is printed this plugin gives such threads a bounded grace to finish, then
names them on stderr and ends the process with the run's own exit status.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

#: How long lingering threads may take to finish after the last test before the run is ended.
GRACE_SECONDS = 10.0

_status = pytest.StashKey[int]()


def lingering_threads() -> list[threading.Thread]:
    """Threads that would keep the interpreter from exiting."""
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and t.is_alive() and not t.daemon]


def wait_for_threads(grace: float) -> list[threading.Thread]:
    """Join lingering threads until ``grace`` seconds have passed; return those still alive."""
    deadline = time.monotonic() + grace
    for thread in lingering_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    return lingering_threads()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_status] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") or _status not in config.stash:
        # mutmut runs pytest inside its own process and reads the result itself.
        return
    left = wait_for_threads(GRACE_SECONDS)
    if not left:
        return
    names = ", ".join(thread.name for thread in left)
    status = config.stash[_status]
    print(
        f"\nexit_guard: {len(left)} thread(s) still running {GRACE_SECONDS:.0f} s after the "
        f"last test ({names}); something a test opened was not closed. Exiting with {status}.",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    os._exit(status)
