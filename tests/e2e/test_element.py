"""<rt-chat> as an element: its lifecycle in the DOM, and what assistive technology gets."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.harness import (
    demo_model,
    open_page,
    reply,
    rtserver,
    wait_connected,
    wait_reply,
)

pytestmark = pytest.mark.e2e

MODELS = (demo_model("quick", "Quick", 80, default=True),)


async def test_removing_the_element_closes_its_connection_and_adding_it_back_reconnects(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, MODELS) as server:
        alice = await open_page(browser, server.url + "/r/lifecycle")
        bob = await open_page(browser, server.url + "/r/lifecycle")
        await wait_connected(alice)
        await wait_connected(bob)
        people = bob.locator("rt-chat .people li")
        await expect(people).to_have_count(2)

        await alice.evaluate(
            "() => { window.kept = document.querySelector('rt-chat'); window.kept.remove(); }"
        )
        await expect(people).to_have_count(1)

        await alice.evaluate("() => document.querySelector('main#room').append(window.kept)")
        await wait_connected(alice)
        await expect(people).to_have_count(2)
        # Changing the room attribute moves the element to another room with one connection.
        await alice.evaluate("() => window.kept.setAttribute('room', 'elsewhere')")
        await expect(people).to_have_count(1)
        await wait_connected(alice)
        await expect(alice.locator("rt-chat .room")).to_have_text("elsewhere")
        await expect(alice.locator("rt-chat .people li")).to_have_count(1)


async def test_controls_are_labelled_and_streams_are_announced_politely(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, MODELS) as server:
        page = await open_page(browser, server.url + "/r/a11y")
        await wait_connected(page)
        await expect(page.get_by_role("status")).to_contain_text("Live")
        box = page.get_by_role("textbox", name="Message")
        await box.fill("Tell me about owls")
        await page.get_by_role("button", name="Send").click()
        await expect(page.get_by_role("region", name="Conversation")).to_contain_text("owls")

        await wait_reply(page, "quick", status="complete")
        card = reply(page, "quick")
        await expect(card).to_have_attribute("aria-busy", "false")
        await expect(card).to_have_attribute("aria-label", "Quick reply")
        # One polite announcement per stream event, never the tokens themselves.
        live = page.locator('rt-chat [aria-live="polite"]')
        await expect(live).to_have_text(re.compile(r"Quick finished, [\d.]+ tok/s\.$"))
        for button in await page.locator("rt-chat button:visible").all():
            name = (await button.get_attribute("aria-label")) or (await button.inner_text())
            assert name.strip(), await button.evaluate("(b) => b.outerHTML")
        await expect(page.get_by_role("button", name="Stop Quick")).to_be_disabled()
