"""Model output is untrusted: hostile markdown must render inert, while streaming and after."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, Dialog, Page, expect

from tests.e2e.harness import (
    demo_model,
    open_page,
    page_errors,
    reply,
    rtserver,
    send_prompt,
    wait_connected,
    wait_reply,
)
from tests.e2e.hostile import HOSTILE_ANSWER, HostileProvider

pytestmark = pytest.mark.e2e


async def test_hostile_markdown_renders_inert(browser: Browser, db_path: str) -> None:
    models = (demo_model("hostile", "Hostile", 30, default=True),)
    # Held before its last line, so that the test can look at the reply half written.
    hold = asyncio.Event()
    provider = HostileProvider(hold=hold)
    async with rtserver(db_path, models, providers={"hostile": provider}) as server:
        page = await open_page(browser, server.url + "/r/xss")
        dialogs: list[str] = []

        async def dismiss(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", dismiss)
        await wait_connected(page)
        await send_prompt(page, "Say something nasty")

        # Mid-stream, inside the unclosed fence: the open block is already a code block, and
        # the reply stays in its column.
        held = HOSTILE_ANSWER.index("still inside")
        await wait_reply(page, "hostile", min_chars=held - 7, status="streaming")
        body = reply(page, "hostile").locator(".md")
        await expect(body.locator("pre code")).to_contain_text("window.__pwned = 'fence'")
        assert await body.locator("script, img").count() == 0
        await assert_within_log(page)
        hold.set()

        state = await wait_reply(page, "hostile", status="complete")
        assert state["text"] == HOSTILE_ANSWER

        # Raw HTML is shown as text, not made into elements.
        await expect(body).to_contain_text("<img src=x onerror=")
        await expect(body).to_contain_text("<script>window.__pwned = 'script'</script>")
        for tag in ("img", "script", "iframe", "svg", "style", "[onerror]", "[onclick]", "[style]"):
            assert await body.locator(tag).count() == 0, tag
        hrefs = await body.locator("a").evaluate_all("(links) => links.map((a) => a.href)")
        assert hrefs, "the markdown links should still be links"
        assert not [h for h in hrefs if h.lower().startswith("javascript:")], hrefs
        # The unclosed fence stays inside the reply, as a code block.
        await expect(body.locator("pre code")).to_contain_text("still inside an unclosed fence")

        # Trying the links and hovering the table does nothing either.
        for link in await body.locator("a").all():
            await link.click(modifiers=["Alt"])
        await body.locator("table").hover()
        assert await page.evaluate("() => window.__pwned ?? null") is None
        assert dialogs == []
        assert page_errors(page) == []
        # Nothing escaped the reply's box to cover the page.
        await assert_within_log(page)


async def assert_within_log(page: Page) -> None:
    box = await reply(page, "hostile").bounding_box()
    log = await page.locator("rt-chat .log").bounding_box()
    assert box is not None
    assert log is not None
    assert log["x"] <= box["x"]
    assert box["x"] + box["width"] <= log["x"] + log["width"]
