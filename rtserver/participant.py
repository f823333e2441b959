"""A participant of a room: one connection's identity, codec, outbox and prompt budget."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rtserver.codec import Codec, Outgoing
from rtserver.errors import PeerError
from rtserver.frames import Participant, PresenceEntry
from rtserver.outbox import Outbox


class TokenBucket:
    """Allows a burst of ``capacity`` actions, refilled steadily over ``per_seconds``."""

    def __init__(self, *, capacity: int, per_seconds: float, clock: Callable[[], float]) -> None:
        self._capacity = float(capacity)
        self._rate = capacity / per_seconds
        self._clock = clock
        self._tokens = float(capacity)
        self._at = clock()

    def take(self) -> float:
        """Spend one action; 0 when allowed, else the seconds until one is allowed."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


@dataclass(eq=False, slots=True)
class Member:
    """One connected participant of a room."""

    id: str
    name: str
    session: str
    codec: Codec
    outbox: Outbox
    prompts: TokenBucket
    typing: bool = False
    identity: Participant = field(init=False)

    def __post_init__(self) -> None:
        self.identity = Participant(id=self.id, name=self.name)

    def presence(self) -> PresenceEntry:
        return PresenceEntry(id=self.id, name=self.name, typing=self.typing)

    def send(self, frame: Outgoing, *, force: bool = False) -> bool:
        """Queue a frame; False when the outbox is full or closed."""
        return self.outbox.put(frame.data(self.codec), force=force)

    def preload(self, frame: Outgoing) -> None:
        """Queue a frame of the catch-up a joiner gets (welcome, replay), outside the bound."""
        self.outbox.preload(frame.data(self.codec))

    def send_error(self, error: PeerError) -> None:
        """Tell this participant what was wrong with its frame."""
        self.outbox.put(self.codec.render(error.to_frame(), None), force=True)
