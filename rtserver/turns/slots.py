"""Server-wide ceilings on things that run at once: a count with a limit, shared by rooms."""

from __future__ import annotations

from rtserver.errors import PeerError


class Slots:
    """At most ``capacity`` holders at once; a request for more is refused ``busy``.

    Used for running generations (``[limits] streams_max``): every room and ``/v1/chat`` take
    their streams from one instance, so no room, however busy, can hold more than the server.
    """

    def __init__(self, *, capacity: int, what: str, retry_after: float) -> None:
        self._capacity = capacity
        self._what = what
        self._retry_after = retry_after
        self._used = 0

    @property
    def used(self) -> int:
        return self._used

    def take(self, count: int = 1) -> None:
        """Hold ``count`` slots, or raise ``busy`` (taking none) when fewer are free."""
        if self._used + count > self._capacity:
            raise PeerError(
                "busy",
                f"the server is running its limit of {self._capacity} {self._what}: try again soon",
                retry_after=self._retry_after,
            )
        self._used += count

    def give_back(self, count: int = 1) -> None:
        """Free ``count`` slots taken earlier."""
        self._used = max(0, self._used - count)
