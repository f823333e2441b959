"""A router's lane in real Chromium: its head names the model answering, says why on hover, and
shows a switch of model when the chosen one fails before its first token."""

from __future__ import annotations

import msgspec
import pytest
from playwright.async_api import Browser, expect

from rtserver.config import ModelSpec
from tests.e2e.harness import demo_model, open_page, rtserver, send_prompt, wait_connected

pytestmark = pytest.mark.e2e

MODELS = (
    demo_model("quick", "Quick", 200),
    demo_model("fast", "Fast", 400),
    # A model whose key is not set: each of its streams fails before its first token.
    ModelSpec(
        id="flaky",
        provider="openai",
        model="gpt-x",
        label="Flaky",
        api_key_env="RT_E2E_UNSET_KEY",
    ),
    msgspec.convert(
        {
            "id": "auto",
            "provider": "router",
            "label": "Auto",
            "default": True,
            "routes": [
                {"when": {"keywords": ["flaky"]}, "model": "flaky"},
                {"when": {"max_chars": 20}, "model": "fast"},
            ],
            "fallback": ["quick", "fast"],
        },
        ModelSpec,
    ),
)


async def test_the_lane_head_shows_the_chosen_model_and_a_switch(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, MODELS) as server:
        alice = await open_page(browser, server.url + "/r/routed")
        bob = await open_page(browser, server.url + "/r/routed")
        await wait_connected(alice)
        await wait_connected(bob)
        head = alice.locator('rt-chat .lanes .lane[data-model="auto"]')
        await expect(head.locator(".lane-label")).to_have_text("Auto")

        await send_prompt(alice, "hi there")
        await expect(head.locator(".lane-label")).to_have_text("Auto → Fast")
        await expect(head.locator(".lane-tab")).to_have_attribute(
            "title", "Chosen: route 2: 8 chars <= 20"
        )
        await expect(head).to_have_attribute("data-status", "done")
        await expect(head).not_to_have_attribute("data-switched", "")
        card = alice.locator('rt-chat article.reply[data-model="auto"]').last
        await expect(card.locator(".model")).to_have_text("Auto → Fast")

        await send_prompt(alice, "ask the flaky one please")
        await expect(head.locator(".lane-label")).to_have_text("Auto → Quick")
        await expect(head).to_have_attribute("data-switched", "")
        await expect(head.locator(".lane-switch")).to_have_text("switched from Flaky")
        title = await head.locator(".lane-tab").get_attribute("title")
        assert title == (
            "Chosen: route 1: keyword 'flaky'\n"
            "Switched to quick: flaky failed before its first token: RT_E2E_UNSET_KEY is not set"
        )
        await expect(head).to_have_attribute("data-status", "done")

        # Everyone sees the same: the other participant's head, and a newcomer after a reload.
        other = bob.locator('rt-chat .lanes .lane[data-model="auto"]')
        await expect(other.locator(".lane-label")).to_have_text("Auto → Quick")
        await expect(other.locator(".lane-switch")).to_have_text("switched from Flaky")
        await bob.reload()
        await wait_connected(bob)
        await expect(other.locator(".lane-label")).to_have_text("Auto → Quick")
        cards = bob.locator('rt-chat article.reply[data-model="auto"] .model')
        await expect(cards).to_have_text(["Auto → Fast", "Auto → Quick"])
        # One lane only: the routed replies are not put in their models' lanes.
        await expect(bob.locator("rt-chat .lanes .lane")).to_have_count(1)
