"""One server per database file: an exclusive lock on a file beside it.

Two servers writing one SQLite file each believe their own checkpoints and recover each other's
streaming replies, so the second is refused at start, naming the first. The lock is ``flock`` on
``<db>.lock``, which holds the holder's pid and address for the message. The kernel lets go of
it when the process ends, however it ends, so a ``kill -9`` never leaves a stale lock behind;
the file itself stays (removing it would let a third server lock a new file while the second
still holds the old one).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from rtserver.errors import StoreError
from rtserver.store.selection import is_postgres_url


class DatabaseLock:
    """Held by the one server that uses a database file."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, db_path: str) -> DatabaseLock | None:
        """Lock ``db_path`` for this process; None for an in-memory database or a
        PostgreSQL URL (a server that many nodes may share).

        Raises StoreError naming the holder when another process has it.
        """
        if db_path == ":memory:" or db_path.startswith("file::memory:") or is_postgres_url(db_path):
            return None
        path = Path(f"{db_path}.lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create lock file {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 400).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreError(
                f"database {db_path} is in use by another rtserver ({holder}); "
                "stop it, or give this one its own --db"
            ) from None
        lock = cls(path, fd)
        lock.describe(None)
        return lock

    def describe(self, address: str | None) -> None:
        """Record who holds the lock: this pid and, once it listens, its address."""
        text = f"pid {os.getpid()}" + (f", serving on {address}" if address else "")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text.encode() + b"\n", 0)

    def release(self) -> None:
        """Let go of the lock (the process ending does too)."""
        os.close(self._fd)
