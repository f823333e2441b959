"""What a client yields besides the server's frames, and how it says it must stop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rtserver.protocol.frames import ServerFrame

ConnectionState = Literal["connecting", "open", "reconnecting", "closed"]


@dataclass(frozen=True, slots=True)
class StatusChange:
    """Not a frame: the client's connection changed state.

    ``attempt`` counts failed attempts since the last welcome; ``retry_in`` is the wait, in
    seconds, before the next one while ``reconnecting``; ``reason`` says why the last
    connection ended.
    """

    state: ConnectionState
    attempt: int = 0
    retry_in: float | None = None
    reason: str | None = None


#: What ``async for event in room`` yields.
Event = ServerFrame | StatusChange


class ClientError(Exception):
    """Root of the errors the client raises."""


class Refused(ClientError):
    """The server refused this client for good (close 1008, ``unauthorized``, ``forbidden``,
    or an HTTP 4xx on the handshake): reconnecting cannot help, so the client stops.
    """

    def __init__(self, message: str, *, code: str | None = None, close_code: int | None = None):
        super().__init__(message)
        self.code = code
        self.close_code = close_code


class ConnectFailed(ClientError):
    """The first connection brought no welcome; later ones are retried on their own."""
