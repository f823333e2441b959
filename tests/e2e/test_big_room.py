"""A room bigger than the listed few: the widget lists them and counts the rest, live."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from rtserver.config import Limits
from tests.e2e.harness import demo_model, open_page, page_errors, rtserver, wait_connected
from tests.support import RoomClient

pytestmark = pytest.mark.e2e

MODELS = (demo_model("demo", "Demo", 50, default=True),)


async def test_the_widget_lists_the_first_few_and_counts_everyone(
    browser: Browser, db_path: str
) -> None:
    limits = Limits(presence_listed=2)
    async with rtserver(db_path, MODELS, limits=limits) as server, aiohttp.ClientSession() as http:
        page = await open_page(browser, server.url + "/r/big")
        await wait_connected(page)
        url = server.url.replace("http", "ws", 1) + "/v1/rooms/big/ws"
        others = [await RoomClient.connect(http, url, name=f"guest{n}") for n in range(4)]
        people = page.locator("rt-chat ul.people")
        # The page joined first and guest0 second: they are listed; three more are counted.
        await expect(people.locator("li")).to_have_count(3)
        await expect(people.locator("li[data-more]")).to_have_text("+3 more")
        await expect(people.locator("li").nth(1)).to_have_text("guest0")
        await expect(people).to_have_attribute("aria-label", "In this room: you and 4 more")
        # A listed one leaves: the next to have joined takes its place, and the count drops.
        await others[0].close()
        await expect(people.locator("li").nth(1)).to_have_text("guest1")
        await expect(people.locator("li[data-more]")).to_have_text("+2 more")
        for other in others[1:]:
            await other.close()
        await expect(people.locator("li[data-more]")).to_have_count(0)
        await expect(people).to_have_attribute("aria-label", "In this room: only you")
        assert page_errors(page) == []
