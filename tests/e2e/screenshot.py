"""Takes the README's screenshot: the demo app, one room, three lanes mid-stream.

Run by hand after a change to the widget's look (the web assets must be built)::

    .venv/bin/python -m tests.e2e.screenshot [path]

It starts the real server on a loopback port with three simulated models of different speeds,
opens the room in two browser pages (so presence shows two people, one of them typing), sends
a prompt from one, and shoots the other page while all three lanes are still streaming.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Browser, Page

from tests.e2e.harness import (
    ROOT,
    check_built_assets,
    chromium,
    demo_model,
    rtserver,
    send_prompt,
    wait_connected,
    wait_reply,
)

DEFAULT_PATH = ROOT / "docs" / "images" / "demo-three-lanes.png"
MODELS = (
    demo_model("demo-careful", "Careful (simulated, 8 tok/s)", 8, default=True),
    demo_model("demo", "Demo (simulated, 14 tok/s)", 14, default=True),
    demo_model("demo-quick", "Quick (simulated, 22 tok/s)", 22, default=True),
)
ROOM = "/r/design-review?models=demo-careful,demo,demo-quick"


async def person(browser: Browser, url: str, name: str) -> Page:
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    await context.add_init_script(f"localStorage.setItem('rtserver.name', {name!r})")
    page = await context.new_page()
    await page.goto(url)
    await wait_connected(page)
    return page


async def shoot(path: Path) -> None:
    problem = check_built_assets()
    if problem:
        raise SystemExit(problem)
    with tempfile.TemporaryDirectory() as tmp:
        async with rtserver(str(Path(tmp) / "rooms.db"), MODELS) as server, chromium() as browser:
            ada = await person(browser, server.url + ROOM, "Ada")
            grace = await person(browser, server.url + ROOM, "Grace")
            await send_prompt(grace, "How should we think about caching and consistency?")
            # Mid-stream: the slowest lane has a few lines, the fastest is well ahead.
            await wait_reply(ada, "demo-careful", min_chars=150, status="streaming")
            await grace.locator("rt-chat textarea").press_sequentially("And what about")
            await ada.locator('rt-chat .people li[data-typing=""]').wait_for()
            path.parent.mkdir(parents=True, exist_ok=True)
            await ada.screenshot(path=str(path))
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(shoot(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH))
