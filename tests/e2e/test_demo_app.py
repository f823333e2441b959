"""The demo app at /: open or create a room, share its URL, pick models."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.harness import demo_model, open_page, rtserver, wait_connected

pytestmark = pytest.mark.e2e

MODELS = (
    demo_model("alpha", "Alpha", 50, default=True),
    demo_model("beta", "Beta", 50),
    demo_model("gamma", "Gamma", 50),
)


async def test_create_a_room_pick_models_and_share_its_url(browser: Browser, db_path: str) -> None:
    async with rtserver(db_path, MODELS) as server:
        page = await open_page(browser, server.url + "/")
        start = page.locator("main#start")
        # Until a room is chosen only the form shows, never an empty, disconnected room.
        await expect(start).to_be_visible()
        await expect(page.locator("main#room")).to_be_hidden()
        await start.get_by_label("Your name").fill("Ada")
        await start.get_by_role("button", name="New random room").click()
        await expect(page).to_have_url(re.compile(r"/r/room-[0-9a-z]{6}\?models=alpha$"))
        await wait_connected(page)
        await expect(start).to_be_hidden()
        await expect(page.locator("rt-chat .people li")).to_have_text(["Ada (you)"])

        # The server's default model is ticked; ticking another adds its lane and its id to
        # the URL that the share box offers.
        await expect(page.get_by_role("checkbox", name="Alpha")).to_be_checked()
        await page.get_by_role("checkbox", name="Gamma").check()
        await expect(page.locator("rt-chat .lane")).to_have_count(2)
        await expect(page).to_have_url(re.compile(r"\?models=alpha%2Cgamma$"))
        shared = await page.locator("#share-url").input_value()

        # Someone opening the shared link is in the same room with the same lanes.
        guest = await open_page(browser, shared)
        await wait_connected(guest)
        await expect(guest.locator("rt-chat .lane")).to_have_text(
            [re.compile("^Alpha"), re.compile("^Gamma")]
        )
        await expect(page.locator("rt-chat .people li")).to_have_count(2)


async def test_open_a_named_room_from_the_form(browser: Browser, db_path: str) -> None:
    async with rtserver(db_path, MODELS) as server:
        page = await open_page(browser, server.url + "/")
        room = page.locator("main#start").get_by_label("Room", exact=True)
        await room.fill("not a room!")
        await page.get_by_role("button", name="Open room").click()
        await expect(page).to_have_url(server.url + "/")
        await room.fill("team_42")
        await room.press("Enter")
        await expect(page).to_have_url(re.compile(r"/r/team_42"))
        await wait_connected(page)
        await expect(page.locator("rt-chat .room")).to_have_text("team_42")
