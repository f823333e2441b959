"""Functions that the tool tests configure as ``kind = "python"`` tools."""

from __future__ import annotations

import asyncio
import threading


def add(a: int, b: int = 2, note: str | None = None) -> int:
    """Add two numbers.

    More words that are not the summary.

    Args:
        a: the first number
        b (int): the second number
    """
    return a + b


async def slow_echo(text: str, delay: float = 0.0) -> dict[str, object]:
    """Echo the text back after a pause."""
    await asyncio.sleep(delay)
    return {"echo": text, "items": [1, 2]}


def leaks(path: str) -> str:
    """Fails with a message that must not reach the room."""
    raise PermissionError(f"cannot read {path}: /home/secret")


def thread_name() -> str:
    """The thread the call runs in."""
    return threading.current_thread().name


NOT_CALLABLE = 42
