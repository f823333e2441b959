"""Model output is untrusted: hostile markdown must render inert, while streaming and after."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Dialog, expect

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
    async with rtserver(db_path, models, providers={"hostile": HostileProvider()}) as server:
        page = await open_page(browser, server.url + "/r/xss")
        dialogs: list[str] = []

        async def dismiss(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", dismiss)
        await wait_connected(page)
        await send_prompt(page, "Say something nasty")
        state = await wait_reply(page, "hostile", status="complete")
        assert state["text"] == HOSTILE_ANSWER

        body = reply(page, "hostile").locator(".md")
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
        box = await reply(page, "hostile").bounding_box()
        log = await page.locator("rt-chat .log").bounding_box()
        assert box is not None
        assert log is not None
        assert box["width"] <= log["width"]
