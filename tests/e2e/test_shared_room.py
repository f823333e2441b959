"""Two people in one room, in two browser pages: live streams, cancel, interrupt."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.harness import (
    demo_model,
    open_page,
    page_errors,
    reply,
    reply_state,
    rtserver,
    send_prompt,
    wait_connected,
    wait_reply,
)

pytestmark = pytest.mark.e2e

# Slow enough (150 tokens at 10-12 tok/s: over 12 s) that each stream is still running while
# the test acts on it.
MODELS = (
    demo_model("tortoise", "Tortoise", 10, default=True),
    demo_model("hare", "Hare", 12, default=True),
)
ROOM = "/r/shared?models=tortoise,hare"


async def two_pages(browser: Browser, base: str) -> tuple[Page, Page]:
    alice, bob = await asyncio.gather(
        open_page(browser, base + ROOM), open_page(browser, base + ROOM)
    )
    await asyncio.gather(wait_connected(alice), wait_connected(bob))
    return alice, bob


async def both_streaming(page: Page, min_chars: int = 20) -> None:
    for model in ("tortoise", "hare"):
        await wait_reply(page, model, min_chars=min_chars, status="streaming")


async def test_a_prompt_streams_to_both_models_in_both_pages_at_once(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, MODELS) as server:
        alice, bob = await two_pages(browser, server.url)
        await send_prompt(alice, "Explain rivers and deltas")

        # Both lanes are streaming in both pages at the same moment, and still growing in Bob's.
        await both_streaming(alice)
        await both_streaming(bob)
        before = await reply_state(bob, "hare")
        assert before is not None
        await wait_reply(bob, "hare", min_chars=len(before["text"]) + 10, status="streaming")
        for page in (alice, bob):
            assert await reply_state(page, "tortoise") is not None
            await expect(page.locator("rt-chat .prompt")).to_contain_text("Explain rivers")
            await expect(reply(page, "hare")).to_have_attribute("aria-busy", "true")
            await expect(page.locator('rt-chat .lane[data-model="hare"]')).to_have_attribute(
                "data-streaming", ""
            )
        # Both see the same author and the composer switches to queueing while streams run.
        await expect(alice.locator("rt-chat button.primary")).to_have_text("Queue")
        await expect(bob.locator("rt-chat .prompt .who")).not_to_contain_text("(you)")
        assert page_errors(alice) == page_errors(bob) == []


async def test_cancel_of_one_lane_from_the_other_page_stops_it_in_both(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, MODELS) as server:
        alice, bob = await two_pages(browser, server.url)
        await send_prompt(alice, "Compare trains and buses")
        await both_streaming(bob)

        await bob.get_by_role("button", name="Stop Tortoise").click()

        for page in (alice, bob):
            await expect(reply(page, "tortoise")).to_have_attribute("data-status", "cancelled")
            await expect(reply(page, "tortoise").locator(".reason")).to_contain_text("Cancelled")
            # The other lane runs on.
            await expect(reply(page, "hare")).to_have_attribute("data-status", "streaming")
        stopped = await reply_state(alice, "tortoise")
        assert stopped is not None
        # Cancelled means the model stopped, not just the display: no more text arrives.
        await wait_reply(alice, "hare", min_chars=len(stopped["text"]) + 30)
        assert await reply_state(alice, "tortoise") == stopped


async def test_cancel_all_stops_every_lane_in_both_pages(browser: Browser, db_path: str) -> None:
    async with rtserver(db_path, MODELS) as server:
        alice, bob = await two_pages(browser, server.url)
        await send_prompt(bob, "Describe mountains")
        await both_streaming(alice)

        await alice.get_by_role("button", name="Stop all").click()

        for page in (alice, bob):
            for model in ("tortoise", "hare"):
                await expect(reply(page, model)).to_have_attribute("data-status", "cancelled")
            await expect(page.locator("rt-chat button.primary")).to_have_text("Send")
            await expect(page.get_by_role("button", name="Stop all")).to_be_hidden()


async def test_interrupt_and_redirect_ends_the_turn_and_starts_the_new_prompt(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, MODELS) as server:
        alice, bob = await two_pages(browser, server.url)
        await send_prompt(alice, "Tell me about forests")
        await both_streaming(bob)

        await bob.locator("rt-chat textarea").fill("Deserts instead, and shorter")
        await bob.get_by_role("button", name="Interrupt & send").click()

        for page in (alice, bob):
            for model in ("tortoise", "hare"):
                first = reply(page, model, turn=0)
                await expect(first).to_have_attribute("data-status", "interrupted")
                await expect(first.locator(".reason")).to_contain_text("Interrupted")
            await expect(page.locator("rt-chat section.turn")).to_have_count(2)
            await expect(page.locator("rt-chat section.turn").last).to_contain_text("deserts")
            for model in ("tortoise", "hare"):
                # The demo model's opening names the prompt's first words.
                state = await wait_reply(page, model, turn=1, min_chars=40)
                assert "deserts" in state["text"]


async def test_keyboard_enter_sends_escape_stops_and_a_busy_enter_queues(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, MODELS) as server:
        alice, bob = await two_pages(browser, server.url)
        box = alice.locator("rt-chat textarea")
        await box.fill("line one")
        await box.press("Shift+Enter")
        await box.press_sequentially("line two")
        await expect(box).to_have_value("line one\nline two")
        await box.press("Enter")
        await expect(bob.locator("rt-chat .prompt")).to_contain_text("line one\nline two")
        await both_streaming(alice, min_chars=1)

        # While replies stream, Enter puts the next prompt in the room's queue, seen by both.
        await box.fill("about volcanoes")
        await box.press("Enter")
        for page in (alice, bob):
            await expect(page.locator("rt-chat .room-queue")).to_contain_text("about volcanoes")

        # Esc stops every stream and clears the room's queue, for both pages.
        await box.press("Escape")
        for model in ("tortoise", "hare"):
            await expect(reply(bob, model, turn=0)).to_have_attribute("data-status", "cancelled")
        for page in (alice, bob):
            await expect(page.locator("rt-chat .room-queue")).to_be_hidden()
            withdrawn = page.locator("rt-chat section.turn[data-withdrawn]")
            await expect(withdrawn).to_contain_text("about volcanoes")
            await expect(withdrawn.locator("article.reply")).to_have_count(0)
