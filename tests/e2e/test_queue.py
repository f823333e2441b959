"""The room's queue and regenerate in the widget, in two Chromium pages: both see the same
queue (whose prompt, in what order), only its author withdraws a prompt, and a reply runs
again from its Regenerate button with the earlier version a click away."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.harness import (
    demo_model,
    open_page,
    page_errors,
    rtserver,
    send_prompt,
    wait_connected,
)

pytestmark = pytest.mark.e2e

MODELS = (
    # Slow enough (150 tokens at 10 tok/s) to be running while the test acts.
    demo_model("tortoise", "Tortoise", 10, default=True),
    demo_model("rabbit", "Rabbit", 400),
)


async def _pages(browser: Browser, url: str) -> tuple[Page, Page]:
    alice, bob = await asyncio.gather(open_page(browser, url), open_page(browser, url))
    await asyncio.gather(wait_connected(alice), wait_connected(bob))
    return alice, bob


async def test_both_pages_show_the_rooms_queue_and_only_the_author_withdraws(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, MODELS) as server:
        alice, bob = await _pages(browser, server.url + "/r/queue?models=tortoise")
        await send_prompt(alice, "Tell me about glaciers")
        await expect(alice.locator('rt-chat article.reply[data-status="streaming"]')).to_have_count(
            1
        )
        await send_prompt(bob, "Bob asks about rivers")
        await send_prompt(alice, "Alice asks about lakes")
        for page in (alice, bob):
            entries = page.locator("rt-chat .room-queue-entry")
            await expect(entries).to_have_count(2)
            await expect(entries.nth(0)).to_contain_text("Bob asks about rivers")
            await expect(entries.nth(1)).to_contain_text("Alice asks about lakes")
        # Each page offers Withdraw for its own prompt only, and marks it as its own.
        await expect(bob.locator(".room-queue-entry").nth(0)).to_contain_text("(you)")
        await expect(alice.locator(".room-queue-entry").nth(0).locator("button")).to_have_count(0)
        await expect(bob.locator(".room-queue-entry").nth(1).locator("button")).to_have_count(0)

        await bob.get_by_role("button", name="Withdraw your queued prompt: Bob asks").click()
        for page in (alice, bob):
            entries = page.locator("rt-chat .room-queue-entry")
            await expect(entries).to_have_count(1)
            await expect(entries).to_contain_text("Alice asks about lakes")
        # Stop all ends the stream and clears what is left of the queue, for both.
        await bob.locator("rt-chat").get_by_role("button", name="Stop all").click()
        for page in (alice, bob):
            await expect(page.locator("rt-chat .room-queue")).to_be_hidden()
            await expect(page.locator("rt-chat section.turn[data-withdrawn]")).to_have_count(2)
        assert page_errors(alice) == page_errors(bob) == []


async def test_regenerate_shows_the_new_reply_and_keeps_the_old_one_reachable(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, MODELS) as server:
        alice, bob = await _pages(browser, server.url + "/r/again?models=rabbit")
        await send_prompt(alice, "Say something")
        replies = alice.locator('rt-chat article.reply[data-model="rabbit"]')
        await expect(replies.first).to_have_attribute("data-status", "complete")
        first = await replies.first.get_attribute("data-message")

        await alice.get_by_role("button", name="Regenerate Rabbit's reply").click()
        await expect(replies).to_have_count(2)
        newest = alice.locator('rt-chat article.reply[data-version="newest"]')
        await expect(newest).to_have_attribute("data-status", "complete")
        assert await newest.get_attribute("data-message") != first
        # Only the newest shows; the earlier version is a click away, in both pages.
        for page in (alice, bob):
            visible = page.locator('rt-chat article.reply[data-model="rabbit"]:visible')
            await expect(visible).to_have_count(1)
            toggle = page.get_by_role("button", name="Earlier versions (1)")
            await toggle.click()
            await expect(visible).to_have_count(2)
            await expect(
                page.locator(f'rt-chat article.reply[data-message="{first}"]')
            ).to_be_visible()
            await page.get_by_role("button", name="Hide earlier versions").click()
            await expect(visible).to_have_count(1)
        assert page_errors(alice) == page_errors(bob) == []
