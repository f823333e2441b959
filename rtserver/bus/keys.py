"""Where the Redis bus keeps what it keeps: every key under one prefix.

A room's keys share a hash tag (``{room:ID}``), so the scripts that touch several of them at
once also run on a Redis Cluster, where one script may only touch keys of one slot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """The keys of one room."""

    #: The room's event stream; an entry's id is ``SEQ-0``, so a seq is a stream position.
    events: str
    #: The last seq handed out (INCR).
    seq: str
    #: The epoch of the room's event log: new whenever Redis lost the log.
    epoch: str
    #: Per writing node, the last batch it published: a retried batch is not published twice.
    writers: str
    #: Which node owns the room's running turn (a lease: SET NX PX).
    lease: str
    #: Presence: ``node|participant`` -> entry, and the stream of changes to it.
    presence: str
    presence_changes: str
    #: Which node holds a session, by the session's hash: where an SSE client's POSTs go.
    sessions: str

    def session(self, session: str) -> str:
        """The key naming the node of ``session`` (a bearer secret: only its hash is kept)."""
        digest = hashlib.sha256(session.encode()).hexdigest()[:32]
        return f"{self.sessions}:{digest}"


class Keys:
    """The key names of one deployment, all under ``prefix``."""

    def __init__(self, prefix: str = "rt") -> None:
        self.prefix = prefix

    def room(self, room_id: str) -> RoomKeys:
        base = f"{self.prefix}:{{room:{room_id}}}"
        return RoomKeys(
            events=f"{base}:events",
            seq=f"{base}:seq",
            epoch=f"{base}:epoch",
            writers=f"{base}:writers",
            lease=f"{base}:lease",
            presence=f"{base}:presence",
            presence_changes=f"{base}:presence:changes",
            sessions=f"{base}:session",
        )

    def control(self, node: str) -> str:
        """The stream of control messages addressed to ``node``."""
        return f"{self.prefix}:node:{node}:control"

    def alive(self, node: str) -> str:
        """Present while ``node`` runs (renewed by its heartbeat)."""
        return f"{self.prefix}:node:{node}:alive"

    def counter(self, name: str) -> str:
        """A cluster-wide counter (rates, budgets)."""
        return f"{self.prefix}:count:{name}"
