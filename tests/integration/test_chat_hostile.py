"""`rtserver chat` shows others' names, prompts and model text as plain text: no markup is
interpreted and no control character reaches the terminal."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestServer
from textual.widgets import Static

from rtserver.client import RoomClient as Client
from rtserver.client.tui import ChatApp, printable
from tests.conftest import ws_url
from tests.support import RoomClient

HOSTILE = "[bold red]loud[/] \x1b[2J\x1b]0;title\x07 rivers \u009b31m"


def test_printable_replaces_control_characters_and_keeps_markup_literal() -> None:
    text = printable(HOSTILE + "\nnext\tline")
    assert text.plain == (
        "[bold red]loud[/] \ufffd[2J\ufffd]0;title\ufffd rivers \ufffd31m\nnext\tline"
    )
    assert not text.spans


async def test_hostile_names_and_prompts_show_literally(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    mallory = await RoomClient.connect(http, ws_url(server, "hostile"), name="[b]mal[/b]\x1b[H")
    app = ChatApp(Client(str(server.make_url("/")), "hostile", name="ada"), models=["quick"])
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            async with asyncio.timeout(20):
                while app.state.me is None:
                    await pilot.pause(0.05)
                await mallory.send(
                    {"type": "prompt", "id": "p1", "text": HOSTILE, "models": ["quick"]}
                )
                await mallory.wait_for(lambda f: f["type"] == "stream_end")
                while not app.state.lanes() or app.state.lanes()["quick"].status == "streaming":
                    await pilot.pause(0.05)
                # The screen is redrawn on a timer: wait for the turn to be drawn.
                while not str(app.query_one("#turn", Static).content).startswith("[b]"):
                    await pilot.pause(0.05)
            turn = str(app.query_one("#turn", Static).content)
            assert turn == "[b]mal[/b]\ufffd[H: " + printable(HOSTILE).plain
            assert "\x1b" not in str(app.query_one("#lane-1 VerticalScroll Static", Static).content)
    finally:
        await mallory.close()
