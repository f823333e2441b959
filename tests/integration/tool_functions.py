"""Functions the socket tests configure as ``kind = "python"`` tools.

``hang`` notes that it started and that it was cancelled in ``HANGS``, a module-level record the
tests read: the functions run inside the server the test started, in the same process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Hangs:
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


HANGS = Hangs()


def reset() -> None:
    """A fresh record for the next test (the events belong to its loop)."""
    global HANGS
    HANGS = Hangs()


async def hang() -> str:
    """Wait until cancelled."""
    HANGS.started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        HANGS.cancelled.set()
        raise
    return "never"


def fail(reason: str = "") -> str:
    """Always raises."""
    raise OSError(f"disk on fire: /secret/{reason}")


def huge(size: int) -> str:
    """Return ``size`` characters."""
    return "y" * size


def echo(text: str) -> str:
    """Return the text."""
    return text


async def meet(name: str) -> str:
    """Wait until ``a`` and ``b`` have both been called: only calls that run together end."""
    MEETING.setdefault(name, asyncio.Event()).set()
    for other in ("a", "b"):
        await MEETING.setdefault(other, asyncio.Event()).wait()
    return f"met {name}"


MEETING: dict[str, asyncio.Event] = {}
