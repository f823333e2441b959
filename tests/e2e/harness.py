"""What the browser tests share: Chromium's launch, loopback servers, and reading <rt-chat>.

Everything listens on 127.0.0.1 only. The widget's DOM lives in an open shadow root; Playwright's
CSS locators pierce it, and the small scripts here read the element's public ``roomState``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from weakref import WeakKeyDictionary

import aiohttp
from aiohttp import web
from playwright.async_api import Browser, Locator, Page, Playwright, async_playwright

from rtserver.app import create_app
from rtserver.config import Limits, ModelSpec, Settings
from rtserver.providers.base import Provider

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=LocalNetworkAccessChecks",
)
ROOT: Final = Path(__file__).resolve().parents[2]
STATIC: Final = ROOT / "rtserver" / "static"
WEB_SOURCES: Final = (ROOT / "web" / "src", ROOT / "web" / "demo", ROOT / "web" / "build.mjs")
#: Long enough for a slow Chromium start on a busy 2-core machine, short enough to fail fast.
TIMEOUT_MS: Final = 20_000


def check_built_assets() -> str | None:
    """Why the browser tests cannot run on the static folder as it is, or None if they can."""
    bundle = STATIC / "rt-chat.js"
    if not bundle.exists() or not (STATIC / "index.html").exists():
        return "the web assets are not built: run `make web`"
    built = bundle.stat().st_mtime
    for source in WEB_SOURCES:
        files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
        newer = [p for p in files if p.stat().st_mtime > built]
        if newer:
            return f"the web assets are older than {newer[0].relative_to(ROOT)}: run `make web`"
    return None


def demo_model(model_id: str, label: str, tokens_per_s: float, **kwargs: Any) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="demo",
        label=label,
        tokens_per_s=tokens_per_s,
        first_token_s=0.1,
        **kwargs,
    )


@dataclass
class Running:
    """A server on a loopback port."""

    url: str
    runner: web.AppRunner


async def serve(app: web.Application) -> Running:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return Running(url=f"http://{host}:{port}", runner=runner)


@asynccontextmanager
async def rtserver(
    db_path: str,
    models: tuple[ModelSpec, ...],
    providers: Mapping[str, Provider] | None = None,
    *,
    limits: Limits | None = None,
) -> AsyncIterator[Running]:
    """The real server with these models and a SQLite file of its own."""
    settings = Settings(db_path=db_path, models=models, limits=limits or Limits())
    app = create_app(settings, providers=providers)
    running = await serve(app)
    try:
        yield running
    finally:
        await running.runner.cleanup()


@asynccontextmanager
async def host_page(html: str) -> AsyncIterator[Running]:
    """Another origin serving ``html`` at ``/``: a page that embeds the widget."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    running = await serve(app)
    try:
        yield running
    finally:
        await running.runner.cleanup()


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    playwright: Playwright
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_page(browser: Browser, url: str) -> Page:
    """A page in a context of its own (its own storage, like another person's browser)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = _ERRORS.setdefault(page, [])
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    return page


_ERRORS: WeakKeyDictionary[Page, list[str]] = WeakKeyDictionary()


def page_errors(page: Page) -> list[str]:
    """Uncaught script errors the page has had."""
    return _ERRORS.get(page, [])


# --- reading the widget ------------------------------------------------------------------------


def reply(page: Page, model: str, turn: int = -1) -> Locator:
    """The reply card of ``model`` in turn ``turn`` (0 is the oldest, -1 the newest)."""
    turns = page.locator("rt-chat section.turn")
    chosen = turns.last if turn == -1 else turns.nth(turn)
    return chosen.locator(f'article.reply[data-model="{model}"]')


async def wait_connected(page: Page, transport: str = "WebSocket") -> None:
    status = page.locator('rt-chat .status[data-state="open"]')
    await status.wait_for()
    text = await status.text_content()
    assert text is not None
    assert transport in text, text


async def send_prompt(page: Page, text: str, selector: str = "rt-chat") -> None:
    box = page.locator(f"{selector} textarea")
    await box.fill(text)
    await box.press("Enter")


_REPLY_TEXT = """([selector, model, turn]) => {
  const chat = document.querySelector(selector);
  const turns = chat?.roomState?.turns ?? [];
  const t = turn < 0 ? turns[turns.length + turn] : turns[turn];
  const reply = t?.replies.filter((r) => r.model === model).at(-1);
  return reply ? {text: reply.text, status: reply.status} : null;
}"""


async def reply_state(
    page: Page, model: str, turn: int = -1, selector: str = "rt-chat"
) -> dict[str, str] | None:
    """A reply's text and status as the element holds them (its RoomState)."""
    state: dict[str, str] | None = await page.evaluate(_REPLY_TEXT, [selector, model, turn])
    return state


async def wait_reply(
    page: Page,
    model: str,
    *,
    min_chars: int = 0,
    status: str | None = None,
    turn: int = -1,
    selector: str = "rt-chat",
) -> dict[str, str]:
    """Waits until a reply has at least ``min_chars`` of text (and ``status``, if given)."""
    handle = await page.wait_for_function(
        """([selector, model, turn, minChars, status]) => {
          const chat = document.querySelector(selector);
          const turns = chat?.roomState?.turns ?? [];
          const t = turn < 0 ? turns[turns.length + turn] : turns[turn];
          const reply = t?.replies.filter((r) => r.model === model).at(-1);
          if (!reply || reply.text.length < minChars) return null;
          if (status !== null && reply.status !== status) return null;
          return {text: reply.text, status: reply.status};
        }""",
        arg=[selector, model, turn, min_chars, status],
    )
    state: dict[str, str] = await handle.json_value()
    return state


async def stored_reply(base_url: str, room: str, model: str) -> dict[str, Any]:
    """The newest reply of ``model`` as the server stored it."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}/v1/rooms/{room}/messages") as response,
    ):
        body: dict[str, Any] = await response.json()
    replies = [m for m in body["messages"] if m.get("model") == model]
    assert replies, body
    latest: dict[str, Any] = replies[-1]
    return latest


# --- a proxy in front of the server ------------------------------------------------------------

_HOP_BY_HOP: Final = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Transfer-Encoding",
        "Upgrade",
        "TE",
        "Trailer",
        "Content-Length",
        "Content-Encoding",
        "Host",
    )
)


@dataclass
class Proxy:
    """Forwards HTTP (streaming SSE too) to ``upstream``; WebSockets are refused or relayed.

    With ``websockets=False`` it stands for a network that blocks WebSockets: every upgrade gets
    HTTP 403, as from a corporate proxy. With ``True`` it relays them, and :meth:`drop_all` cuts
    every relayed connection at once, as a network blip does, while :meth:`black_hole` silences
    them without closing, as a NAT that forgot them or a laptop that slept does.
    """

    upstream: str
    websockets: bool
    refused_upgrades: int = 0
    relayed_upgrades: int = 0
    _sockets: set[web.WebSocketResponse] = field(default_factory=set)
    #: Forwarded HTTP responses still being written: event streams, in practice.
    _streams: set[web.StreamResponse] = field(default_factory=set)
    _silenced: set[web.StreamResponse] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def drop_all(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"proxy dropped the connection")

    def black_hole(self) -> int:
        """From now on, relay nothing from the server on the connections open now (WebSockets
        and event streams), and close nothing: the browser's side stays open. Later connections
        relay as usual. Returns how many connections were silenced."""
        self._silenced.update(self._sockets, self._streams)
        return len(self._sockets) + len(self._streams)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if not self.websockets:
                self.refused_upgrades += 1
                return web.Response(status=403, text="WebSockets are blocked here")
            return await self._relay(request)
        return await self._forward(request)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        async with (
            aiohttp.ClientSession(auto_decompress=False) as http,
            http.request(
                request.method,
                self.upstream + request.rel_url.raw_path_qs,
                headers=headers,
                data=body or None,
                allow_redirects=False,
            ) as upstream,
        ):
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    response.headers.add(key, value)
            await response.prepare(request)
            self._streams.add(response)
            try:
                # Chunk by chunk, so that an event stream reaches the browser as it is written.
                with suppress(ConnectionResetError):
                    async for chunk in upstream.content.iter_any():
                        if response not in self._silenced:
                            await response.write(chunk)
                        elif request.transport is None or request.transport.is_closing():
                            break
            finally:
                self._streams.discard(response)
                self._silenced.discard(response)
            return response

    async def _relay(self, request: web.Request) -> web.WebSocketResponse:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        async with aiohttp.ClientSession() as http:
            url = self.upstream.replace("http", "ws", 1) + request.rel_url.raw_path_qs
            async with http.ws_connect(url, protocols=[p for p in offered if p]) as upstream:
                browser = web.WebSocketResponse(
                    protocols=[upstream.protocol] if upstream.protocol else ()
                )
                await browser.prepare(request)
                self.relayed_upgrades += 1
                self._sockets.add(browser)
                try:
                    await _pump_both(browser, upstream, lambda: browser in self._silenced)
                finally:
                    self._sockets.discard(browser)
                    self._silenced.discard(browser)
                    await upstream.close()
                    await browser.close()
                return browser


async def _pump_both(
    browser: web.WebSocketResponse,
    upstream: aiohttp.ClientWebSocketResponse,
    silenced: Callable[[], bool],
) -> None:
    """Relay both ways until either side ends; server frames are dropped while ``silenced``."""

    async def pump(
        source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        send_str: Callable[[str], Awaitable[None]],
        send_bytes: Callable[[bytes], Awaitable[None]],
        muted: Callable[[], bool] = lambda: False,
    ) -> None:
        async for message in source:
            if muted():
                continue
            if message.type == aiohttp.WSMsgType.TEXT:
                await send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await send_bytes(message.data)

    tasks = [
        asyncio.create_task(pump(browser, upstream.send_str, upstream.send_bytes)),
        asyncio.create_task(pump(upstream, browser.send_str, browser.send_bytes, silenced)),
    ]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
