"""A blocking wrapper of :class:`RoomClient` for scripts that do not use asyncio.

The client runs on an event loop in a background thread; each method waits for its result.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from rtserver.client.connection import RoomClient
from rtserver.client.events import Event
from rtserver.client.state import RoomState
from rtserver.protocol.frames import Params, StreamEnd, StreamStart, Welcome

T = TypeVar("T")


class SyncRoom:
    """A room client for blocking code; use it as ``with connect_sync(...) as room``."""

    def __init__(self, client: RoomClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        #: The room as the events read so far describe it.
        self.state = RoomState()

    def __enter__(self) -> SyncRoom:
        self._thread.start()
        try:
            self._call(self._client.start())
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._client.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @property
    def welcome(self) -> Welcome | None:
        return self._client.welcome

    def prompt(
        self, text: str, *, models: list[str] | None = None, params: Params | None = None
    ) -> str:
        """Send a prompt; returns its id."""
        return self._call(self._client.prompt(text, models=models, params=params))

    def cancel(self, *, stream: str | None = None, model: str | None = None) -> None:
        self._call(self._client.cancel(stream=stream, model=model))

    def interrupt(self, *, text: str | None = None, models: list[str] | None = None) -> str:
        return self._call(self._client.interrupt(text=text, models=models))

    def regenerate(self, model: str, reply_to: str) -> str:
        """Run ``model``'s reply to user message ``reply_to`` again; returns the frame's id."""
        return self._call(self._client.regenerate(model, reply_to))

    def withdraw(self, message: str) -> str:
        """Take one's own queued prompt out of the room's queue; returns the frame's id."""
        return self._call(self._client.withdraw(message))

    def typing(self, active: bool) -> None:
        self._call(self._client.typing(active))

    def events(self, *, timeout: float | None = None) -> Iterator[Event]:
        """Events as they come, each folded into :attr:`state` first; ends when the client
        closes. Raises ``TimeoutError`` when none comes within ``timeout`` seconds."""
        while True:
            event = self._call(self._client.next_event(timeout))
            if event is None:
                return
            self.state.apply(event)
            yield event

    def ask(
        self, text: str, *, models: list[str] | None = None, timeout: float = 300.0
    ) -> dict[str, str]:
        """Send a prompt and wait until every model has answered it: text by model id."""
        prompt_id = self.prompt(text, models=models)
        turn_id: str | None = None
        waiting: set[str] = set()
        for event in self.events(timeout=timeout):
            turn = next((t for t in self.state.turns if t.prompt_id == prompt_id), None)
            if turn is None:
                continue
            if isinstance(event, StreamStart) and event.reply_to == turn.id:
                waiting.add(event.stream)
            elif isinstance(event, StreamEnd):
                waiting.discard(event.stream)
            turn_id = turn.id
            if not waiting and turn.replies and all(r.status != "streaming" for r in turn.replies):
                break
        turn = next((t for t in self.state.turns if t.id == turn_id), None)
        return {reply.model: reply.text for reply in turn.replies} if turn else {}


def connect_sync(
    base_url: str, room: str, *, name: str | None = None, token: str | None = None
) -> SyncRoom:
    """A blocking client of ``room``; see :func:`rtserver.client.connect` for the arguments."""
    return SyncRoom(RoomClient(base_url, room, name=name, token=token))
