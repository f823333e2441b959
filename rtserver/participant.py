"""A participant of a room: one connection's identity, codec, outbox and prompt budget."""

from __future__ import annotations

from dataclasses import dataclass, field

from rtserver.codec import Codec, Outgoing
from rtserver.frames import Participant, PresenceEntry
from rtserver.outbox import Outbox
from rtserver.ratelimit import TokenBucket


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
