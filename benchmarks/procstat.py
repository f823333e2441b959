"""What a server process has used, read from Linux's /proc.

CPU time comes from each thread's ``schedstat`` (nanoseconds on a CPU), summed over the
process's threads: /proc/<pid>/stat counts in clock ticks of 10 ms, too coarse for runs whose
server time is a few hundred milliseconds. Memory is the resident set (``VmRSS``). And where a
benchmark's server runs: on a core of its own, as if its clients were on other machines.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path


def cpu_ns(pid: int) -> int:
    """Nanoseconds the process's live threads have run on a CPU."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended between the listing and the read
    return total


def rss_bytes(pid: int) -> int:
    """The process's resident memory in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ProcessLookupError(f"no VmRSS for process {pid}")


async def wait_idle(
    pid: int, *, busy_ns: int = 5_000_000, window_s: float = 0.2, limit_s: float = 60
) -> bool:
    """Wait until the process used under ``busy_ns`` of CPU in a ``window_s``; False on timeout."""
    deadline = time.monotonic() + limit_s
    before = cpu_ns(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(window_s)
        now = cpu_ns(pid)
        if now - before < busy_ns:
            return True
        before = now
    return False


SERVER_CORE_HELP = "give the server this CPU core alone, and the clients the others"


def pin(core: int | None) -> None:
    """Run this process on ``core`` alone (None: wherever the system likes)."""
    if core is not None:
        os.sched_setaffinity(0, {core})


def pin_elsewhere(core: int | None) -> None:
    """Keep this process off ``core``, if there is another core to run on."""
    if core is not None:
        others = os.sched_getaffinity(0) - {core}
        if others:
            os.sched_setaffinity(0, others)
