"""The widget at the size it is given: phones, sidebars, launcher panels, tablets, laptops.

Each test keeps one page and one pair of streams, and resizes the window through the sizes of
:data:`SIZES`, measuring at each while both models stream: nothing scrolls sideways, each lane's
Stop and status are in view, the streamed reply is in view and the conversation has most of the
height. A screenshot of each size goes to the test's tmp folder (its path is printed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.harness import (
    TIMEOUT_MS,
    demo_model,
    host_page,
    open_page,
    page_errors,
    rtserver,
    send_prompt,
    wait_connected,
    wait_reply,
)
from tests.e2e.small_screens import SIZES, Geometry, measure, shoot

pytestmark = pytest.mark.e2e

# 150 tokens at 4 tok/s: over 35 s, so both streams run while the window goes through 4 sizes;
# each test stops them when it is done. Long labels, as real model names are.
MODELS = (
    demo_model("careful", "Careful (simulated, 4 tok/s)", 4, default=True),
    demo_model("steady", "Steady (simulated, 4 tok/s)", 4, default=True),
    demo_model("brisk", "Brisk (simulated, 30 tok/s)", 30),
)
LANES = ("careful", "steady")
#: Below this width two lanes no longer fit side by side (the element's container query).
TABS_BELOW_PX = 35 * 16


async def both_streaming(page: Page, selector: str = "rt-chat") -> None:
    for model in LANES:
        await wait_reply(page, model, min_chars=30, status="streaming", selector=selector)


async def resize(page: Page, width: int, height: int, *, expect_tabs: bool) -> None:
    """Sets the window's size and waits until the element has laid itself out for it."""
    await page.set_viewport_size({"width": width, "height": height})
    layout = "tabs" if expect_tabs else "columns"
    await page.wait_for_function(
        """([layout]) => {
          const root = document.querySelector("rt-chat").shadowRoot.querySelector(".root");
          return (root.dataset.layout ?? "columns") === layout
            && root.querySelector(".lanes").classList.contains("tabs") === (layout === "tabs");
        }""",
        arg=[layout],
    )


async def check_lanes(page: Page, geometry: Geometry, frame: str | None = None) -> None:
    """Both lanes' replies can be seen: side by side, or each through its own tab."""
    assert geometry.problems(LANES) == [], geometry.raw
    if geometry.layout == "columns":
        for model in LANES:
            assert geometry.lane(model)["replyInView"], (model, geometry.raw)
        return
    # Tabs: one lane's replies show; pressing the other's tab shows that one instead.
    for model in LANES:
        await page.locator(f'rt-chat .lane[data-model="{model}"] button.lane-tab').click()
        await expect(
            page.locator(f'rt-chat .lane[data-model="{model}"] button.lane-tab')
        ).to_have_attribute("aria-pressed", "true")
        shown = await measure(page, LANES, frame=frame)
        assert shown.lane(model)["replyInView"], (model, shown.raw)
        others = [other for other in LANES if other != model]
        assert all(shown.lane(other)["reply"] is None for other in others), shown.raw


async def stop_both(page: Page) -> None:
    for model in LANES:
        await page.locator(f'rt-chat .lane[data-model="{model}"] button.cancel').click()
        await wait_reply(page, model, status="cancelled")
    await expect(page.locator('rt-chat .lane[data-model="careful"] .lane-state')).to_have_text(
        "cancelled"
    )


async def test_the_demo_room_page_at_every_size(
    browser: Browser, db_path: str, tmp_path: Path
) -> None:
    async with rtserver(db_path, MODELS) as server:
        page = await open_page(browser, server.url + "/r/phones?models=careful,steady")
        await wait_connected(page)
        await send_prompt(page, "How do tides work?")
        await both_streaming(page)
        menu = page.get_by_role("button", name="Room options")
        picker = page.locator("#models")
        for width, height in SIZES:
            await resize(page, width, height, expect_tabs=width < TABS_BELOW_PX)
            if width < 768:
                # The picker, share link and name fold behind one button in the header.
                await expect(picker).to_be_hidden()
                await menu.click()
                await expect(menu).to_have_attribute("aria-expanded", "true")
                await expect(page.get_by_role("checkbox", name="Careful")).to_be_visible()
                await shoot(page, tmp_path, "demo-menu")
                await page.locator("#name").press("Escape")
                await expect(picker).to_be_hidden()
                await expect(menu).to_be_focused()
                # A press outside it folds it as well.
                await menu.click()
                await expect(picker).to_be_visible()
                await page.locator("rt-chat textarea").click()
                await expect(picker).to_be_hidden()
                await expect(menu).to_have_attribute("aria-expanded", "false")
            else:
                await expect(menu).to_be_hidden()
                await expect(picker).to_be_visible()
            geometry = await measure(page, LANES)
            await shoot(page, tmp_path, "demo")
            await check_lanes(page, geometry)
        await stop_both(page)
        assert page_errors(page) == []


SIDEBAR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Docs with a chat sidebar</title>
<style>
  body {{ margin: 0; font: 16px/1.5 Georgia, serif; }}
  main {{ margin-right: 26rem; padding: 1rem 2rem; }}
  rt-chat {{ position: fixed; top: 0; right: 0; width: min(26rem, 100vw);
            --rt-height: 100dvh; --rt-radius: 0; }}
  @media (max-width: 40rem) {{ main {{ display: none; }} }}
</style>
<script src="{server}/static/rt-chat.js" defer></script>
</head><body>
<main><h1>Product docs</h1><p>{text}</p></main>
<rt-chat room="sidebar" models="careful,steady" name="Reader"></rt-chat>
</body></html>"""


async def test_the_element_as_a_sidebar_of_another_origin(
    browser: Browser, db_path: str, tmp_path: Path
) -> None:
    async with rtserver(db_path, MODELS) as server:
        html = SIDEBAR_PAGE.format(server=server.url, text="Words of the host page. " * 80)
        async with host_page(html) as host:
            page = await open_page(browser, host.url + "/")
            await wait_connected(page)
            await send_prompt(page, "Summarise this page")
            await both_streaming(page)
            for width, height in SIZES:
                # 26rem wide at most: as narrow on a laptop as on a phone, so always tabs.
                await resize(page, width, height, expect_tabs=True)
                geometry = await measure(page, LANES)
                await shoot(page, tmp_path, "sidebar")
                await check_lanes(page, geometry)
                # One line of status with a head count, and the composer's icons keep names.
                await expect(page.locator("rt-chat .people-count")).to_have_text("1 here")
                await expect(page.get_by_role("button", name="Stop all")).to_be_visible()
                await expect(page.locator("rt-chat .hint")).to_have_css("width", "1px")
            await stop_both(page)
            assert page_errors(page) == []


LAUNCHER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>A shop with a chat launcher</title>
<style>body {{ margin: 0; padding: 1rem; font: 16px/1.5 Georgia, serif; }}</style>
<script src="{server}/static/rt-chat.js" defer></script>
</head><body>
<h1>Shop</h1><p>{text}</p><a href="#top">A link before the launcher</a>
<rt-chat mode="launcher" room="help" models="careful,steady" name="Shopper"></rt-chat>
</body></html>"""


TOGGLE_BY_PAGE = """(timeoutMs) => new Promise((resolve, reject) => {
  const chat = document.querySelector("rt-chat");
  chat.addEventListener("rt-toggle", (event) => resolve(event.detail), {once: true});
  setTimeout(() => reject(new Error("no rt-toggle event")), timeoutMs);
  chat.open = true;
})"""


PANEL_ON_THE_LEFT = """() => {
  const style = document.querySelector("rt-chat").style;
  style.setProperty("--rt-launcher-left", "1rem");
  style.setProperty("--rt-launcher-right", "auto");
  style.setProperty("--rt-panel-width", "30rem");
  style.setProperty("--rt-panel-height", "70dvh");
}"""


async def test_the_launcher_of_another_origin(
    browser: Browser, db_path: str, tmp_path: Path
) -> None:
    async with rtserver(db_path, MODELS) as server:
        html = LAUNCHER_PAGE.format(server=server.url, text="Things to buy. " * 60)
        async with host_page(html) as host:
            page = await open_page(browser, host.url + "/")
            # Connected while closed: so that it can count what comes.
            live = page.locator('rt-chat .status[data-state="open"]')
            await live.wait_for(state="attached")
            launcher = page.locator("rt-chat button.launcher")
            panel = page.get_by_role("dialog", name="Chat: help")
            await expect(launcher).to_have_attribute("aria-expanded", "false")
            await expect(panel).to_be_hidden()

            # The keyboard opens it, and lands in the prompt box.
            await launcher.focus()
            await page.keyboard.press("Enter")
            await expect(launcher).to_have_attribute("aria-expanded", "true")
            await expect(panel).to_be_visible()
            await expect(page.get_by_role("textbox", name="Message")).to_be_focused()
            await send_prompt(page, "Which size fits me?")
            await both_streaming(page)
            for width, height in SIZES:
                await resize(page, width, height, expect_tabs=True)
                geometry = await measure(page, LANES, frame=".panel")
                await shoot(page, tmp_path, "launcher")
                await check_lanes(page, geometry, frame=".panel")

            # Esc closes the panel (the streams go on) and gives the keyboard back to the button,
            # which says that replies stream behind it.
            await page.get_by_role("textbox", name="Message").press("Escape")
            await expect(panel).to_be_hidden()
            await expect(launcher).to_be_focused()
            await expect(launcher).to_have_attribute("aria-expanded", "false")
            await expect(launcher).to_have_attribute("data-streaming", "")
            await expect(launcher).to_have_accessible_name("Chat (replies streaming)")
            await wait_reply(page, "careful", status="streaming")
            await shoot(page, tmp_path, "launcher-closed-streaming")

            # What comes while it is closed is counted on it: two replies to a new prompt.
            await page.evaluate("() => document.querySelector('rt-chat').cancelAll()")
            for model in LANES:
                await wait_reply(page, model, status="cancelled")
            await page.evaluate("() => document.querySelector('rt-chat').send('And colours?')")
            badge = page.locator("rt-chat .badge")
            await expect(badge).to_have_text("2", timeout=TIMEOUT_MS)
            await expect(launcher).to_have_accessible_name(
                "Chat (2 new messages, replies streaming)"
            )
            await shoot(page, tmp_path, "launcher-unread")
            await launcher.click()
            await expect(panel).to_be_visible()
            await expect(badge).to_have_text("")
            assert await page.evaluate("() => document.querySelector('rt-chat').unread") == 0
            await page.get_by_role("button", name="Close chat").click()
            await expect(panel).to_be_hidden()
            await expect(launcher).to_be_focused()

            # The page can open it too (the open attribute), and hears each change.
            detail = await page.evaluate(TOGGLE_BY_PAGE, TIMEOUT_MS)
            assert detail == {"open": True}
            await expect(panel).to_be_visible()
            await expect(launcher).to_have_attribute("aria-expanded", "true")

            # Its corner and size are the page's: the how-to's example, on a 1280x800 window.
            await page.evaluate(PANEL_ON_THE_LEFT)
            await expect(panel).to_have_css("width", "480px")
            box = await panel.bounding_box()
            button = await launcher.bounding_box()
            assert box is not None
            assert button is not None
            assert box["x"] == button["x"] == 16, (box, button)
            assert box["height"] == 0.7 * 800, box
            assert box["y"] + box["height"] < button["y"], (box, button)
            await page.evaluate("() => document.querySelector('rt-chat').cancelAll()")
            assert page_errors(page) == []


SET_MODELS = "(models) => document.querySelector('rt-chat').setAttribute('models', models)"


async def test_more_lanes_than_fit_become_tabs_in_a_wide_element_too(
    browser: Browser, db_path: str, tmp_path: Path
) -> None:
    async with rtserver(db_path, MODELS) as server:
        page = await open_page(browser, server.url + "/r/three?models=careful,steady,brisk")
        await wait_connected(page)
        # About 640 px of room: two lanes of 16rem fit side by side, three do not.
        await resize(page, 700, 800, expect_tabs=True)
        await expect(page.locator("rt-chat .lane button.lane-tab")).to_have_count(3)
        geometry = await measure(page, ("careful", "steady", "brisk"))
        await shoot(page, tmp_path, "three-lanes")
        assert geometry.problems(("careful", "steady", "brisk"), streaming=False) == []
        await page.evaluate(SET_MODELS, "careful,steady")
        await resize(page, 700, 800, expect_tabs=False)
        await expect(page.locator("rt-chat .lane")).to_have_count(2)
        await page.evaluate(SET_MODELS, "careful,steady,brisk")
        await expect(page.locator("rt-chat .lane")).to_have_count(3)
        await resize(page, 700, 800, expect_tabs=True)
        await resize(page, 1280, 800, expect_tabs=False)
        geometry = await measure(page, ("careful", "steady", "brisk"))
        assert geometry.problems(("careful", "steady", "brisk"), streaming=False) == []
        assert page_errors(page) == []
