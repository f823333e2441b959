"""Limits per client that hold across its connections: rates, open connections, daily tokens.

A client is an identity key (see :mod:`rtserver.auth.access`): a token's ``sub``, a client
address, or one connection. Every table here is bounded: the least recently used keys are
forgotten first, which at worst forgives a forgotten client what it had spent. A key of one
connection alone is never put in a table: nothing else counts under it, so the connection's
own buckets (full at first, as a table's would be) say the same, and a table would only keep
them after the connection ends.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Final

from rtserver.auth.access import CONNECTION_KEY
from rtserver.auth.ratelimit import KeyedBuckets, TokenBucket, refuse_if_waiting
from rtserver.config import Limits
from rtserver.errors import PeerError

#: Clients remembered per table; one entry is a few hundred bytes.
MAX_CLIENTS: Final = 100_000
DAY_S: Final = 86_400
#: What a client refused a connection is told to wait before it tries again.
CONNECTION_RETRY_S: Final = 5.0
#: What a connection of a key that is its own holds: there is nothing to count it against.
_UNCOUNTED: Final = nullcontext()


class DailyBudget:
    """Output tokens one client may spend per UTC day (``per_day``; 0 means no budget)."""

    __slots__ = ("_clock", "_day", "_per_day", "_spent")

    def __init__(self, *, per_day: int, clock: Callable[[], float]) -> None:
        self._per_day = per_day
        self._clock = clock
        self._day = -1
        self._spent = 0

    def _today(self) -> int:
        day = int(self._clock() // DAY_S)
        if day != self._day:
            self._day, self._spent = day, 0
        return day

    def check(self) -> None:
        """Raise ``rate_limited`` until the day rolls once the budget is spent."""
        if self._per_day == 0:
            return
        day = self._today()
        if self._spent >= self._per_day:
            raise PeerError(
                "rate_limited",
                f"the daily budget of {self._per_day} output tokens is spent",
                retry_after=round((day + 1) * DAY_S - self._clock(), 3),
            )

    def spend(self, tokens: int) -> None:
        self._today()
        self._spent += max(0, tokens)

    @property
    def spent(self) -> int:
        self._today()
        return self._spent


@dataclass(frozen=True, slots=True)
class Quota:
    """What one client's connections spend from together."""

    prompts: TokenBucket
    typing_changes: TokenBucket
    budget: DailyBudget


class ClientLimits:
    """Every per-client limit of a server, by identity key."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._wall_clock = wall_clock
        self._prompts = self._table(limits.prompts_per_minute)
        self._typing = self._table(limits.typing_changes_per_minute)
        self._joins = self._table(limits.joins_per_minute)
        self._history = self._table(limits.history_pages_per_minute)
        self._chats = self._table(limits.prompts_per_minute)
        self._budgets: OrderedDict[str, DailyBudget] = OrderedDict()
        self._connections: dict[str, int] = {}

    def _table(self, per_minute: int) -> KeyedBuckets:
        return KeyedBuckets(
            capacity=per_minute, per_seconds=60.0, clock=self._clock, max_keys=MAX_CLIENTS
        )

    def quota(self, key: str) -> Quota:
        """The prompt and typing buckets and the day's budget that ``key`` spends from."""
        return Quota(
            prompts=_bucket(self._prompts, key),
            typing_changes=_bucket(self._typing, key),
            budget=self.budget(key),
        )

    def budget(self, key: str) -> DailyBudget:
        if _alone(key):
            return self._new_budget()
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._new_budget()
            self._budgets[key] = budget
            if len(self._budgets) > MAX_CLIENTS:
                self._budgets.popitem(last=False)
        else:
            self._budgets.move_to_end(key)
        return budget

    def _new_budget(self) -> DailyBudget:
        return DailyBudget(per_day=self._limits.tokens_per_user_per_day, clock=self._wall_clock)

    def join(self, key: str) -> None:
        """Count a join (a welcome) of ``key``, or refuse it with ``rate_limited``."""
        per_minute = self._limits.joins_per_minute
        wait = _bucket(self._joins, key).take()
        refuse_if_waiting(wait, f"{per_minute} joins a minute from this client")

    def history_page(self, key: str) -> None:
        per_minute = self._limits.history_pages_per_minute
        wait = _bucket(self._history, key).take()
        refuse_if_waiting(wait, f"{per_minute} history pages a minute from this client")

    def chat(self, key: str) -> None:
        """Count a ``/v1/chat`` request, and refuse it when the budget is spent."""
        per_minute = self._limits.prompts_per_minute
        wait = _bucket(self._chats, key).take()
        refuse_if_waiting(wait, f"{per_minute} chats a minute from this client")
        self.budget(key).check()

    def connection(self, key: str) -> AbstractContextManager[None]:
        """Hold one of ``key``'s connections open; ``rate_limited`` when it has too many."""
        held = 0 if _alone(key) else self._connections.get(key, 0)
        most = self._limits.connections_per_client
        if held >= most:
            raise PeerError(
                "rate_limited",
                f"more than {most} open connections from this client",
                retry_after=CONNECTION_RETRY_S,
            )
        if _alone(key):
            return _UNCOUNTED
        self._connections[key] = held + 1
        return HeldConnection(self._connections, key)


def _alone(key: str) -> bool:
    """True for the key of one connection alone (see the module's docstring)."""
    return key.startswith(CONNECTION_KEY)


def _bucket(table: KeyedBuckets, key: str) -> TokenBucket:
    return table.unkept() if _alone(key) else table.bucket(key)


class HeldConnection:
    """One connection counted against its client, until the ``with`` block ends.

    A class rather than a generator-based context manager: every open connection holds one,
    and a suspended generator frame costs several times these two slots.
    """

    __slots__ = ("_counts", "_key")

    def __init__(self, counts: dict[str, int], key: str) -> None:
        self._counts = counts
        self._key = key

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        left = self._counts[self._key] - 1
        if left:
            self._counts[self._key] = left
        else:
            del self._counts[self._key]
