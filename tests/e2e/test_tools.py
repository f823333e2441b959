"""Tool calls in the widget: a call, its approval and its result, seen in several pages."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from rtserver.app import create_app
from rtserver.config import Limits, Settings, ToolConfig
from tests.e2e.harness import demo_model, host_page, open_page, page_errors, serve
from tests.integration.access_client import ENV, token

pytestmark = pytest.mark.e2e

#: The built-in calculator, but each call asks the room first.
GUARDED = ToolConfig(
    id="guarded", kind="python", function="rtserver.tools.builtin:calculator", approval="ask"
)
MODELS = (demo_model("calc", "Calc", 60, default=True, tools=["guarded"]),)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tools</title>
<script src="{server}/static/rt-chat.js" defer></script></head><body>
<rt-chat></rt-chat>
</body></html>"""


async def page_as(browser: Browser, server: str, host: str, who: str, role: str) -> Page:
    """A page of its own (another person's browser) with ``who``'s token."""
    page = await open_page(browser, host + f"/?who={who}")
    await page.evaluate(
        """([server, value]) => {
          const chat = document.querySelector("rt-chat");
          chat.setAttribute("server", server);
          chat.setAttribute("token", value);
          // The room last: without one the element does not connect.
          chat.setAttribute("room", "tools");
        }""",
        [server, token(who, ["tools"], name=who.title(), role=role)],  # type: ignore[arg-type]
    )
    await expect(page.locator('rt-chat .status[data-state="open"]')).to_be_visible()
    return page


async def test_a_call_waits_for_a_member_then_every_page_shows_its_result(
    browser: Browser, db_path: str
) -> None:
    settings = Settings(
        db_path=db_path, models=MODELS, tools=(GUARDED,), limits=Limits(token_flush_ms=0)
    )
    server = await serve(create_app(settings, env=ENV))
    try:
        html = PAGE.format(server=server.url)
        async with host_page(html) as host:
            alice = await page_as(browser, server.url, host.url, "alice", "member")
            bob = await page_as(browser, server.url, host.url, "bob", "member")
            vic = await page_as(browser, server.url, host.url, "vic", "viewer")
            box = alice.locator("rt-chat textarea")
            await box.fill("What is 17 * 23?")
            await box.press("Enter")

            # Every page shows the call waiting, with its arguments; only members get buttons.
            for page in (alice, bob, vic):
                call = page.locator('rt-chat .tool[data-state="waiting"]')
                await expect(call).to_be_visible()
                await expect(call.locator(".tool-name")).to_have_text("calculator")
                await expect(call.locator(".tool-args")).to_contain_text('"17 * 23"')
            await expect(bob.locator("rt-chat .tool-approve")).to_be_visible()
            await expect(alice.locator("rt-chat .tool-deny")).to_be_visible()
            await expect(vic.locator("rt-chat .tool-ask")).to_be_hidden()

            await bob.locator("rt-chat .tool-approve").click()

            for page in (alice, bob, vic):
                done = page.locator('rt-chat .tool[data-state="done"]')
                await expect(done).to_be_visible()
                await expect(done.locator(".tool-decision")).to_have_text("Approved by Bob")
                await expect(done.locator(".tool-result pre")).to_have_text("391")
                await expect(done.locator(".tool-ask")).to_be_hidden()
                reply = page.locator('rt-chat article.reply[data-model="calc"]')
                await expect(reply).to_have_attribute("data-status", "complete")
                await expect(reply.locator(".md")).to_contain_text("17 * 23 = 391")
            for page in (alice, bob, vic):
                assert page_errors(page) == []
    finally:
        await server.runner.cleanup()


async def test_a_late_page_and_a_denial(browser: Browser, db_path: str) -> None:
    settings = Settings(
        db_path=db_path, models=MODELS, tools=(GUARDED,), limits=Limits(token_flush_ms=0)
    )
    server = await serve(create_app(settings, env=ENV))
    try:
        async with host_page(PAGE.format(server=server.url)) as host:
            alice = await page_as(browser, server.url, host.url, "alice", "member")
            box = alice.locator("rt-chat textarea")
            await box.fill("Please calculate 6 * 7")
            await box.press("Enter")
            await expect(alice.locator('rt-chat .tool[data-state="waiting"]')).to_be_visible()

            # A page that joins while the call waits sees it waiting, and may answer it.
            late = await page_as(browser, server.url, host.url, "lee", "member")
            await expect(late.locator('rt-chat .tool[data-state="waiting"]')).to_be_visible()
            await late.locator("rt-chat .tool-deny").click()

            for page in (alice, late):
                failed = page.locator('rt-chat .tool[data-state="error"]')
                await expect(failed).to_be_visible()
                await expect(failed.locator(".tool-decision")).to_have_text("Denied by Lee")
                await expect(failed.locator(".tool-result pre")).to_contain_text("denied")
                reply = page.locator('rt-chat article.reply[data-model="calc"]')
                await expect(reply).to_have_attribute("data-status", "complete")
                await expect(reply.locator(".md")).to_contain_text("could not help")
            assert page_errors(alice) == []
            assert page_errors(late) == []
    finally:
        await server.runner.cleanup()
