"""Earlier history in the widget: a room longer than the welcome's window, paged in on demand."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from rtserver.config import Limits
from tests.e2e.harness import (
    demo_model,
    host_page,
    open_page,
    page_errors,
    rtserver,
    wait_connected,
)
from tests.support import RoomClient

pytestmark = pytest.mark.e2e

QUICK = demo_model("quick", "Quick", 1000, default=True)
PROMPTS = 7
#: The welcome holds 3 messages, so it starts with a reply whose prompt is not in it.
HISTORY = 3
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>History</title>
<script src="{server}/static/rt-chat.js" defer></script>
<style>rt-chat {{ --rt-height: 18rem; }}</style>
</head><body>
<rt-chat room="{room}" name="Reader" history-page-size="4"></rt-chat>
</body></html>"""


async def seed(base_url: str, room: str, count: int) -> None:
    """``count`` prompts, one after another, each answered by the quick demo model."""
    ws_url = base_url.replace("http", "ws", 1) + f"/v1/rooms/{room}/ws"
    async with aiohttp.ClientSession() as http:
        client = await RoomClient.connect(http, ws_url, name="Seeder")
        try:
            for n in range(1, count + 1):
                await client.send(
                    {"type": "prompt", "id": f"seed-{n}", "text": f"Question number {n}"}
                )
                await client.wait_count("stream_end", n)
        finally:
            await client.close()


async def stored_ids(base_url: str, room: str) -> list[str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}/v1/rooms/{room}/messages?limit=200") as response,
    ):
        body: dict[str, Any] = await response.json()
    assert body["next"] is None
    return [message["id"] for message in body["messages"]]


_SHOWN_IDS = """() => [...document.querySelector("rt-chat").shadowRoot
    .querySelectorAll("section.turn, article.reply")].map((node) => node.dataset.message)"""

_TOP_OF = """(id) => {
  const root = document.querySelector("rt-chat").shadowRoot;
  const node = root.querySelector(`section.turn[data-message="${id}"]`);
  return node.getBoundingClientRect().top - root.querySelector(".log").getBoundingClientRect().top;
}"""


_TURN_TEXTS = """() => document.querySelector("rt-chat").roomState.turns.map((t) => t.text)"""


async def press_and_wait_for_more(page: Page) -> None:
    """Presses Enter on the focused button and waits until more of the room is shown."""
    before = len(await page.evaluate(_SHOWN_IDS))
    await page.keyboard.press("Enter")
    await page.wait_for_function(f"() => ({_SHOWN_IDS})().length > {before}")


async def test_load_earlier_pages_in_the_whole_room_in_order_without_duplicates(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, (QUICK,), limits=Limits(history_messages=HISTORY)) as server:
        await seed(server.url, "long", PROMPTS)
        everything = await stored_ids(server.url, "long")
        assert len(everything) == 2 * PROMPTS

        async with host_page(PAGE.format(server=server.url, room="long")) as host:
            page = await open_page(browser, host.url + "/")
            await wait_connected(page)
            button = page.get_by_role("button", name="Load earlier messages")
            await expect(button).to_be_visible()
            first_prompt = page.locator("rt-chat section.turn", has_text="Question number 1")
            await expect(first_prompt).to_have_count(0)
            # The reply that opens the welcome waits for its prompt: only the last turn shows.
            assert await page.evaluate(_SHOWN_IDS) == everything[-2:]

            # A failure is shown, and the button stays to try again.
            await page.route("**/messages?*", lambda route: route.fulfill(status=503, body="{}"))
            await button.click()
            await expect(
                page.get_by_role("alert").filter(has_text="Could not load")
            ).to_contain_text("HTTP 503")
            await page.unroute("**/messages?*")

            # From the keyboard; what was on screen stays where it was.
            newest = everything[-2]
            top = await page.evaluate(_TOP_OF, newest)
            await button.focus()
            await press_and_wait_for_more(page)
            assert abs(await page.evaluate(_TOP_OF, newest) - top) <= 1
            await expect(page.get_by_role("alert").filter(has_text="Could not load")).to_have_count(
                0
            )

            while await button.is_visible():
                await press_and_wait_for_more(page)
            await expect(first_prompt).to_have_count(1)
            await expect(page.locator("rt-chat .earlier-start")).to_be_visible()

            shown = await page.evaluate(_SHOWN_IDS)
            assert shown == everything
            assert len(set(shown)) == len(shown)
            assert await page.evaluate(_TURN_TEXTS) == [
                f"Question number {n}" for n in range(1, PROMPTS + 1)
            ]
            assert page_errors(page) == []
