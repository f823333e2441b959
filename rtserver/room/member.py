"""A participant of a room: one connection's identity, codec, outbox and prompt budget."""

from __future__ import annotations

from dataclasses import dataclass, field

from rtserver.auth.limits import DailyBudget, Quota
from rtserver.auth.ratelimit import TokenBucket
from rtserver.auth.tokens import OPEN_GRANT, Grant
from rtserver.protocol.codec import Codec, Outgoing
from rtserver.protocol.frames import Participant, PresenceEntry
from rtserver.room.outbox import Outbox


@dataclass(frozen=True, slots=True)
class Seat:
    """Who a connection joins as, decided by the access rules rather than by the client."""

    #: The identity key that limits count under, and that SSE POSTs must match.
    owner: str
    #: A stable id for the token's subject; None for a new one.
    member_id: str | None
    grant: Grant
    quota: Quota


@dataclass(eq=False, slots=True)
class Member:
    """One connected participant of a room."""

    id: str
    name: str
    session: str
    codec: Codec
    outbox: Outbox
    prompts: TokenBucket
    typing_changes: TokenBucket
    owner: str = ""
    grant: Grant = OPEN_GRANT
    budget: DailyBudget | None = None
    typing: bool = False
    identity: Participant = field(init=False)

    def __post_init__(self) -> None:
        self.identity = Participant(id=self.id, name=self.name)

    def presence(self) -> PresenceEntry:
        return PresenceEntry(id=self.id, name=self.name, typing=self.typing)

    def send(self, frame: Outgoing) -> bool:
        """Queue a frame; False when the outbox is full or closed."""
        return self.outbox.put(frame.data(self.codec))

    def preload(self, frame: Outgoing) -> None:
        """Queue a frame of the catch-up a joiner gets (welcome, replay), outside the bound."""
        self.outbox.preload(frame.data(self.codec))
