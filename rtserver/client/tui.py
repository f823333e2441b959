"""``rtserver chat``: a room in the terminal, one lane per model side by side (Textual).

Keys: Enter sends the prompt box, Ctrl+R interrupts the running streams and sends it instead,
F1..F9 stop lane 1..9, Escape stops every stream, Ctrl+Q quits. The status line says whether
the client is connected, reconnecting, or resumed (by replay or from a snapshot); after a
server restart the client comes back by itself.
"""

from __future__ import annotations

from contextlib import suppress
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Footer, Input, Static

from rtserver.client.connection import RoomClient
from rtserver.client.events import ClientError, Event, StatusChange
from rtserver.client.state import Reply, RoomState
from rtserver.protocol.frames import ErrorFrame, Welcome

#: Seconds between redraws of the lanes: often enough for live rates, cheap on a busy room.
REDRAW_S = 0.1
MAX_LANES = 9
#: Control characters (C0 but newline and tab, DEL, C1) shown as U+FFFD: text from others
#: (names, prompts, model output) must not reach the terminal as escape sequences.
_CONTROLS = {c: "\ufffd" for c in [*range(0x20), *range(0x7F, 0xA0)] if c not in (0x09, 0x0A)}


def printable(text: str) -> Text:
    """``text`` as plain terminal text: no markup, no control characters."""
    return Text(text.translate(_CONTROLS))


class Lane(Vertical):
    """One model's column: a head line (model, state, TTFT, tokens/s) and its latest reply."""

    DEFAULT_CSS = """
    Lane { width: 1fr; border: round $accent; padding: 0 1; }
    Lane > .head { height: 2; color: $text-muted; }
    Lane > VerticalScroll { height: 1fr; }
    """

    def __init__(self, index: int, model: str) -> None:
        super().__init__(id=f"lane-{index}")
        self.index = index
        self.model = model
        self.head = Static(classes="head", markup=False)
        self.body = Static(markup=False)

    def compose(self) -> ComposeResult:
        yield self.head
        with VerticalScroll():
            yield self.body

    def show(self, state: RoomState, reply: Reply | None) -> None:
        self.head.update(printable(f"F{self.index} {self.model}\n{_figures(state, reply)}"))
        self.body.update(printable(reply.text if reply else ""))


def _figures(state: RoomState, reply: Reply | None) -> str:
    if reply is None:
        return "idle"
    ttft = state.live_ttft_ms(reply)
    rate = reply.tokens_per_s if reply.status != "streaming" else state.live_rate(reply)
    parts: list[str] = [reply.reason or reply.status]
    parts.append(f"TTFT {ttft} ms" if ttft is not None else "TTFT -")
    parts.append(f"{rate:.1f} tok/s" if rate is not None else "- tok/s")
    return " · ".join(parts)


class ChatApp(App[int]):
    """The terminal chat of one room."""

    TITLE = "rtserver chat"
    CSS = """
    #status { height: 1; background: $boost; padding: 0 1; }
    #lanes { height: 1fr; }
    #turn { height: auto; max-height: 3; padding: 0 1; }
    #notice { height: 1; color: $warning; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "interrupt", "Interrupt & send", priority=True),
        Binding("escape", "stop_all", "Stop all", priority=True),
        *(
            Binding(f"f{n}", f"stop_lane({n})", f"Stop lane {n}", show=n == 1, priority=True)
            for n in range(1, MAX_LANES + 1)
        ),
    ]

    def __init__(self, client: RoomClient, *, models: list[str] | None) -> None:
        super().__init__()
        self.client = client
        self.state = RoomState()
        self._wanted = models
        self._lanes: list[Lane] = []
        self._status = "connecting"
        self._notice = ""

    def compose(self) -> ComposeResult:
        yield Static(self._status, id="status", markup=False)
        yield Static("", id="turn", markup=False)
        yield Horizontal(id="lanes")
        yield Static("", id="notice", markup=False)
        yield Input(placeholder="Type a prompt; Enter sends, Ctrl+R interrupts and sends")
        yield Footer()

    def on_mount(self) -> None:
        self.run_worker(self._pump(), exclusive=True)
        self.set_interval(REDRAW_S, self._redraw)
        self.query_one(Input).focus()

    async def on_unmount(self) -> None:
        await self.client.close()

    # --- the room -----------------------------------------------------------------------

    async def _pump(self) -> None:
        try:
            await self.client.start()
            async for event in self.client:
                self._receive(event)
        except ClientError as exc:
            self._status = f"closed: {exc}"
            self._redraw()

    def _receive(self, event: Event) -> None:
        self.state.apply(event)
        match event:
            case Welcome():
                how = "replayed" if event.resumed else "snapshot"
                resumed = self.state.snapshots > 1 or event.resumed
                self._status = (
                    f"resumed ({how})" if resumed else "connected"
                ) + f" · room {event.room} as {event.participant.name}"
                self._ensure_lanes()
            case StatusChange(state="reconnecting", attempt=attempt, retry_in=retry_in):
                wait = f", retry in {retry_in:.1f} s" if retry_in is not None else ""
                self._status = f"reconnecting (attempt {max(1, attempt)}{wait})"
            case StatusChange(state="closed", reason=reason):
                self._status = f"closed{': ' + reason if reason else ''}"
            case ErrorFrame(code=code, message=message):
                self._notice = f"{code}: {message}"

    def _ensure_lanes(self) -> None:
        known = [m.id for m in self.state.models]
        models = self._wanted or [m.id for m in self.state.models if m.default] or known[:1]
        models = [m for m in models if m in known][:MAX_LANES]
        if [lane.model for lane in self._lanes] == models:
            return
        box = self.query_one("#lanes", Horizontal)
        box.remove_children()
        self._lanes = [Lane(i + 1, model) for i, model in enumerate(models)]
        box.mount_all(self._lanes)

    def _redraw(self) -> None:
        # The widgets are composed once and never removed, so they are missing only while the
        # app tears down (a redraw timer's tick, or the client's last status change, arriving
        # after the screen is gone): there is nothing left to draw then.
        with suppress(NoMatches):
            self._draw()

    def _draw(self) -> None:
        here = self.state.participant_count
        status = self._status + (
            f" · {here} here" if self._status.startswith(("conn", "res")) else ""
        )
        self.query_one("#status", Static).update(printable(status))
        self.query_one("#notice", Static).update(printable(self._notice))
        turn = self.state.turns[-1] if self.state.turns else None
        author = turn.author.name if turn and turn.author else "?"
        self.query_one("#turn", Static).update(printable(f"{author}: {turn.text}" if turn else ""))
        lanes = self.state.lanes()
        for lane in self._lanes:
            lane.show(self.state, lanes.get(lane.model))

    # --- keys ---------------------------------------------------------------------------

    async def on_input_submitted(self, submitted: Input.Submitted) -> None:
        await self._send(submitted.value, interrupt=False)

    async def action_interrupt(self) -> None:
        await self._send(self.query_one(Input).value, interrupt=True)

    async def _send(self, text: str, *, interrupt: bool) -> None:
        if not text.strip() and not interrupt:
            return
        models = [lane.model for lane in self._lanes] or None
        self._notice = ""
        if interrupt:
            await self.client.interrupt(text=text if text.strip() else None, models=models)
        else:
            await self.client.prompt(text, models=models)
        self.query_one(Input).value = ""

    async def action_stop_all(self) -> None:
        await self.client.cancel()

    async def action_stop_lane(self, number: int) -> None:
        if number > len(self._lanes):
            return
        reply = self.state.lanes().get(self._lanes[number - 1].model)
        if reply is not None and reply.stream is not None and reply.status == "streaming":
            await self.client.cancel(stream=reply.stream)


def run_chat(
    base_url: str,
    room: str,
    *,
    name: str | None = None,
    token: str | None = None,
    models: list[str] | None = None,
) -> int:
    """Run the terminal chat until the user quits; returns the exit status."""
    client = RoomClient(base_url, room, name=name, token=token)
    app = ChatApp(client, models=models)
    app.run()
    return app.return_code or 0
