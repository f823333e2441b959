"""The widget with room tokens: a refused token is a clear state, not a reconnect loop."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from rtserver.app import create_app
from rtserver.config import Settings
from tests.e2e.harness import demo_model, host_page, open_page, page_errors, serve
from tests.integration.access_client import ENV, token

pytestmark = pytest.mark.e2e

MODELS = (demo_model("quick", "Quick", 80, default=True),)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tokens</title>
<script src="{server}/static/rt-chat.js" defer></script></head><body>
<rt-chat id="expired" room="vault" token="{expired}"></rt-chat>
<rt-chat id="elsewhere" room="vault" token="{elsewhere}" transport="sse"></rt-chat>
<rt-chat id="good" room="vault" token="{good}"></rt-chat>
</body></html>"""


async def test_a_rejected_token_shows_as_refused_and_a_new_token_gets_in(
    browser: Browser, db_path: str
) -> None:
    app = create_app(Settings(db_path=db_path, models=MODELS), env=ENV)
    server = await serve(app)
    try:
        html = PAGE.format(
            server=server.url,
            expired=token("ada", ["vault"], ttl_s=-60),
            elsewhere=token("bob", ["other-room"]),
            good=token("cy", ["vault"], name="Cy"),
        )
        async with host_page(html) as host:
            page = await open_page(browser, host.url + "/")
            good = page.locator('#good .status[data-state="open"]')
            await expect(good).to_contain_text("Live")
            expired = page.locator("#expired .status")
            await expect(expired).to_have_attribute("data-denied", "unauthorized")
            await expect(expired).to_have_attribute("data-state", "closed")
            await expect(expired).to_contain_text("Token rejected")
            await expect(expired).to_contain_text("expired")
            # Over SSE, where EventSource tells nothing, the refusal is found out all the same.
            elsewhere = page.locator("#elsewhere .status")
            await expect(elsewhere).to_have_attribute("data-denied", "forbidden")
            await expect(elsewhere).to_contain_text("Not allowed")
            state = await page.evaluate("() => document.querySelector('#expired').connection")
            assert state["state"] == "closed"
            assert "retryInMs" not in state, "no reconnect is scheduled"

            fresh = token("ada", ["vault"], name="Ada")
            await page.evaluate(
                "(t) => document.querySelector('#expired').setAttribute('token', t)", fresh
            )
            await expect(page.locator('#expired .status[data-state="open"]')).to_be_visible()
            await expect(page.locator("#expired .status")).not_to_have_attribute(
                "data-denied", "unauthorized"
            )
            await expect(page.locator("#good .people li")).to_have_count(2)
            assert page_errors(page) == []
    finally:
        await server.runner.cleanup()
