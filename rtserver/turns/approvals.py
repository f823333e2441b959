"""Tool calls waiting for a member's ``approve``, in one room.

A call of a tool with ``approval = "ask"`` registers here and waits; the first ``approve`` for
its id decides it. No answer within the timeout is a denial (``by`` None). A call that is not
waiting (never asked, decided, timed out, or its stream ended) answers ``not_found``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rtserver.errors import PeerError
from rtserver.protocol.frames import Participant


@dataclass(frozen=True, slots=True)
class Decision:
    """How a waiting call was answered: ``by`` None means nobody answered in time."""

    allow: bool
    by: Participant | None


class Approvals:
    """The calls of one room that wait for an answer, by call id."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Decision]] = {}

    def __contains__(self, call: object) -> bool:
        return call in self._waiting

    async def wait(self, call: str, *, timeout_s: float) -> Decision:
        """Wait for the first answer to ``call``; a denial once ``timeout_s`` has passed.

        Cancelling the waiter (the stream was cancelled) withdraws the question, so a later
        ``approve`` for it gets ``not_found``.
        """
        if call in self._waiting:
            # Two waiting calls with one id could not be told apart by an `approve`.
            return Decision(allow=False, by=None)
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._waiting[call] = future
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            return Decision(allow=False, by=None)
        finally:
            if self._waiting.get(call) is future:
                del self._waiting[call]

    def answer(self, call: str, *, allow: bool, by: Participant) -> None:
        """Decide a waiting call; ``not_found`` when ``call`` is not waiting."""
        future = self._waiting.pop(call, None)
        if future is None or future.done():
            raise PeerError("not_found", "no tool call is waiting for approval with this id")
        future.set_result(Decision(allow=allow, by=by))
