"""Reasoning in the widget: collapsed above the reply, streaming live when opened, inert."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest
from playwright.async_api import Browser, Dialog, Locator, expect

from rtserver.providers.base import (
    Delta,
    FinishDelta,
    GenerationRequest,
    ReasoningDelta,
    TextDelta,
    UsageDelta,
)
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
from tests.e2e.hostile import HOSTILE_ANSWER

pytestmark = pytest.mark.e2e

ANSWER = "The answer, **plainly**."


class Thinker:
    """Thinks hostile markdown in small pieces, waiting at two gates, then answers."""

    kind = "demo"

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.answer = asyncio.Event()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        half = HOSTILE_ANSWER.index("<svg")
        for start in range(0, len(HOSTILE_ANSWER), 9):
            if start <= half < start + 9:
                # Half way: the test opens the disclosure before the rest streams in.
                await self.opened.wait()
            yield ReasoningDelta(HOSTILE_ANSWER[start : start + 9])
        await self.answer.wait()
        yield TextDelta(ANSWER)
        yield UsageDelta(input_tokens=3, output_tokens=20)
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None


def _disclosure(card: Locator) -> Locator:
    return card.locator("details.reasoning")


async def test_reasoning_shows_collapsed_under_the_reply_and_streams_when_opened(
    browser: Browser, db_path: str
) -> None:
    thinker = Thinker()
    models = (demo_model("thinker", "Thinker", 30, default=True),)
    async with rtserver(db_path, models, providers={"thinker": thinker}) as server:
        page = await open_page(browser, server.url + "/r/thoughts")
        dialogs: list[str] = []

        async def dismiss(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", dismiss)
        await wait_connected(page)
        await send_prompt(page, "Think it over")

        card = reply(page, "thinker")
        details = _disclosure(card)
        # Collapsed while the model thinks, labelled so, and nothing of it drawn yet.
        await expect(details.locator("summary")).to_have_text("Thinking…")
        assert await details.get_attribute("open") is None
        await expect(details.locator(".reasoning-text")).to_be_hidden()
        assert await card.locator(":scope > .md").inner_text() == ""

        await details.locator("summary").click()
        body = details.locator(".reasoning-text")
        await expect(body).to_contain_text("Here is an image")
        thinker.opened.set()
        # Open, it streams live: the second half arrives while the reader watches.
        await expect(body).to_contain_text("cover the page")
        await expect(body.locator("pre code")).to_contain_text("still inside an unclosed fence")

        thinker.answer.set()
        await wait_reply(page, "thinker", status="complete")
        length = len(HOSTILE_ANSWER)
        await expect(details.locator("summary")).to_have_text(f"Reasoning · {length:,} characters")
        # The answer stands apart from the thinking, and the thinking stays open as it was.
        answer = card.locator(":scope > .md")
        await expect(answer).to_have_text("The answer, plainly.")
        assert "Here is an image" not in await answer.inner_text()
        assert await details.get_attribute("open") is not None

        # Sanitised like a reply: raw HTML is text, nothing runs, nothing escapes.
        await expect(body).to_contain_text("<img src=x onerror=")
        for tag in ("img", "script", "iframe", "svg", "style", "[onerror]", "[onclick]", "[style]"):
            assert await body.locator(tag).count() == 0, tag
        hrefs = await body.locator("a").evaluate_all("(links) => links.map((a) => a.href)")
        assert not [h for h in hrefs if h.lower().startswith("javascript:")], hrefs
        assert await page.evaluate("() => window.__pwned ?? null") is None

        # Someone who comes later sees it collapsed with its length, and can open it.
        later = await open_page(browser, server.url + "/r/thoughts")
        await wait_connected(later)
        late_details = _disclosure(reply(later, "thinker"))
        await expect(late_details.locator("summary")).to_have_text(
            f"Reasoning · {length:,} characters"
        )
        assert await late_details.get_attribute("open") is None
        await late_details.locator("summary").press("Enter")
        await expect(late_details.locator(".reasoning-text")).to_contain_text("cover the page")
        assert dialogs == []
        assert page_errors(page) == []
        assert page_errors(later) == []


async def test_a_reply_without_reasoning_has_no_disclosure(browser: Browser, db_path: str) -> None:
    models = (demo_model("plain", "Plain", 400, default=True),)
    async with rtserver(db_path, models) as server:
        page = await open_page(browser, server.url + "/r/plain")
        await wait_connected(page)
        await send_prompt(page, "Just answer")
        await wait_reply(page, "plain", status="complete")
        await expect(_disclosure(reply(page, "plain"))).to_be_hidden()
