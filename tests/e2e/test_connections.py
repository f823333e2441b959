"""The widget's connection: SSE fallback, resume after a drop, reload, another origin."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

from tests.e2e.harness import (
    Proxy,
    demo_model,
    host_page,
    open_page,
    page_errors,
    reply,
    reply_state,
    rtserver,
    send_prompt,
    serve,
    stored_reply,
    wait_connected,
    wait_reply,
)

pytestmark = pytest.mark.e2e

# About 150 tokens at 30 tok/s: a reply takes some 5 s.
STEADY = demo_model("steady", "Steady", 30, default=True)
QUICK = demo_model("quick", "Quick", 60)


def words(text: str) -> str:
    """The words of a text, with the markdown the demo model writes (lists, bold) taken out."""
    plain = re.sub(r"^- ", "", text, flags=re.MULTILINE).replace("**", "")
    return " ".join(plain.split())


async def test_a_page_whose_websocket_is_blocked_falls_back_to_sse_and_streams(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, (STEADY,)) as server:
        proxy = Proxy(upstream=server.url, websockets=False)
        front = await serve(proxy.app())
        try:
            page = await open_page(browser, front.url + "/r/blocked")
            await wait_connected(page, transport="SSE")
            assert proxy.refused_upgrades >= 1, "the widget never tried a WebSocket"

            await send_prompt(page, "Tell me about lighthouses")
            state = await wait_reply(page, "steady", status="complete")
            await expect(reply(page, "steady").locator(".stats")).to_contain_text("tok/s")
            stored = await stored_reply(server.url, "blocked", "steady")
            assert state["text"] == stored["text"]
            assert "lighthouses" in state["text"]
            assert page_errors(page) == []
        finally:
            await front.runner.cleanup()


async def test_a_dropped_connection_resumes_without_gap_or_duplicate(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, (STEADY,)) as server:
        proxy = Proxy(upstream=server.url, websockets=True)
        front = await serve(proxy.app())
        try:
            page = await open_page(browser, front.url + "/r/blip")
            await wait_connected(page)
            await send_prompt(page, "Explain tides and moons")
            await wait_reply(page, "steady", min_chars=60, status="streaming")

            # The reconnect can be quicker than any look at the status line: record the
            # element's connection events instead.
            await page.evaluate(
                """() => {
                    window.rtStates = [];
                    document.querySelector("rt-chat").addEventListener(
                        "rt-connection", (event) => window.rtStates.push(event.detail.state));
                }"""
            )
            await proxy.drop_all()
            await page.wait_for_function("() => window.rtStates.some((s) => s !== 'open')")
            await page.wait_for_function("() => window.rtStates.at(-1) === 'open'")
            await wait_connected(page)
            assert proxy.relayed_upgrades >= 2

            state = await wait_reply(page, "steady", status="complete")
            stored = await stored_reply(server.url, "blip", "steady")
            # Exactly the server's text: a lost token or a replayed one would show here.
            assert state["text"] == stored["text"]
            assert words(await reply(page, "steady").locator(".md").inner_text()) == words(
                stored["text"]
            )
        finally:
            await front.runner.cleanup()


async def test_reloading_mid_stream_shows_everything_so_far_and_continues(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, (STEADY,)) as server:
        page = await open_page(browser, server.url + "/r/reload")
        await wait_connected(page)
        await send_prompt(page, "Describe glaciers slowly")
        before = await wait_reply(page, "steady", min_chars=80, status="streaming")

        await page.reload()
        await wait_connected(page)
        after = await reply_state(page, "steady")
        assert after is not None
        # The snapshot already holds at least what was shown before the reload.
        assert after["text"].startswith(before["text"])
        assert after["status"] == "streaming"
        await expect(reply(page, "steady")).to_have_attribute("data-status", "streaming")

        done = await wait_reply(page, "steady", status="complete")
        assert len(done["text"]) > len(after["text"])
        stored = await stored_reply(server.url, "reload", "steady")
        assert done["text"] == stored["text"]


HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A blog with a chat</title>
<script src="{server}/static/rt-chat.js" defer></script>
<style>rt-chat {{ --rt-accent: rgb(200, 0, 90); --rt-height: 30rem; }}</style>
</head><body>
<h1>Somebody else's page</h1>
<rt-chat id="ws" room="embedded" name="Reader" models="quick"></rt-chat>
<rt-chat id="sse" room="embedded" name="Other reader" models="quick" transport="sse"></rt-chat>
<script>
  window.ended = [];
  document.addEventListener("rt-stream-end", (e) => window.ended.push([e.target.id, e.detail]));
</script>
</body></html>"""


async def test_the_widget_embedded_in_a_page_of_another_origin_works(
    browser: Browser, db_path: str
) -> None:
    async with rtserver(db_path, (STEADY, QUICK)) as server:

        async def host_page(request: web.Request) -> web.Response:
            return web.Response(text=HOST_PAGE.format(server=server.url), content_type="text/html")

        host_app = web.Application()
        host_app.router.add_get("/", host_page)
        host = await serve(host_app)
        try:
            assert host.url != server.url
            page = await open_page(browser, host.url + "/")
            # One widget over a WebSocket, one over SSE + POST: both cross-origin.
            for widget, transport in (("#ws", "WebSocket"), ("#sse", "SSE")):
                status = page.locator(f'{widget} .status[data-state="open"]')
                await expect(status).to_contain_text(transport)

            await send_prompt(page, "Say something about harbours", selector="#sse")
            for widget in ("#ws", "#sse"):
                await wait_reply(page, "quick", status="complete", selector=widget)
            ended = await page.wait_for_function("() => window.ended.length === 2 && window.ended")
            events = await ended.json_value()
            assert sorted(widget for widget, _ in events) == ["sse", "ws"]
            for _, detail in events:
                assert detail["model"] == "quick"
                assert detail["reason"] == "complete"
                assert "harbours" in detail["text"]
            # The host page's custom property reaches into the shadow root.
            send = page.locator("#ws button.primary")
            await expect(send).to_have_css("background-color", re.compile(r"rgb\(200, 0, 90\)"))
            assert page_errors(page) == []
        finally:
            await host.runner.cleanup()


HOLE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A quiet network</title>
<script src="{server}/static/rt-chat.js" defer></script>
</head><body>
<rt-chat room="hole" models="quick" transport="{transport}" ping-interval="0.5" ping-timeout="1">
</rt-chat>
<script>
  window.rtStates = [];
  document.addEventListener("rt-connection", (e) => window.rtStates.push(e.detail));
</script>
</body></html>"""


@pytest.mark.parametrize(("transport", "label"), [("websocket", "WebSocket"), ("sse", "SSE")])
async def test_a_connection_that_goes_silent_is_found_dead_and_resumed(
    browser: Browser, db_path: str, transport: str, label: str
) -> None:
    async with rtserver(db_path, (QUICK,)) as server:
        proxy = Proxy(upstream=server.url, websockets=True)
        front = await serve(proxy.app())
        try:
            async with host_page(HOLE_PAGE.format(server=front.url, transport=transport)) as host:
                page = await open_page(browser, host.url + "/")
                await wait_connected(page, transport=label)
                await send_prompt(page, "Tell me about quiet networks")
                await wait_reply(page, "quick", min_chars=40, status="streaming")

                # Nothing more reaches the page, and nothing tells it so: no close, no error.
                assert proxy.black_hole() >= 1
                await page.wait_for_function(
                    """() => window.rtStates.some(
                        (s) => s.state === "reconnecting"
                            && s.reason === "the server stopped answering")"""
                )
                await page.wait_for_function("() => window.rtStates.at(-1).state === 'open'")

                state = await wait_reply(page, "quick", status="complete")
                stored = await stored_reply(server.url, "hole", "quick")
                assert state["text"] == stored["text"]
                assert words(await reply(page, "quick").locator(".md").inner_text()) == words(
                    stored["text"]
                )
                assert page_errors(page) == []
        finally:
            await front.runner.cleanup()
