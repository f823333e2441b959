"""Every WebSocket close code the server uses, in one enum (mirrored in web/src/client).

Pinned by ``protocol/vectors/closecodes.json``: a client reads a code to decide whether to
reconnect (1001, 1013, 4000), give up (1002, 1008) or report a fault (1011).
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes (RFC 6455 section 7.4) and the one the protocol adds (4000)."""

    #: The connection ended as asked: the client left, or a one-shot reply was complete.
    NORMAL = 1000
    #: The server is shutting down, or a room could not take the participant: reconnect.
    GOING_AWAY = 1001
    #: The client broke the protocol (no hello first, a frame that is not one): do not retry.
    PROTOCOL_ERROR = 1002
    #: Never sent: the connection was lost without a close frame (an outbox records it so).
    CONNECTION_LOST = 1006
    #: A missing, bad or insufficient token (after ``unauthorized`` or ``forbidden``).
    POLICY_VIOLATION = 1008
    #: A client frame passed ``[limits] max_frame_bytes``.
    MESSAGE_TOO_BIG = 1009
    #: The server failed (a room could not be opened): retrying later may help.
    INTERNAL_ERROR = 1011
    #: Refused for now (``busy``, ``rate_limited``): retry after the error's ``retry_after``.
    TRY_AGAIN_LATER = 1013
    #: The participant read too slowly and its outbox filled: reconnect at once and resume.
    SLOW_CONSUMER = 4000
