"""What the small-screen browser tests measure: the widget's geometry as a person sees it.

One script reads, in the page, everything the layout must give at a size: sideways overflow,
where each lane's Stop and status are, which replies show and where, how tall the conversation
is against the room's frame (the window, or the launcher's panel), and the smallest button.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from playwright.async_api import Page

#: The sizes of the issue: two phones/sidebars, a tablet, a laptop.
SIZES: Final = ((360, 640), (420, 640), (768, 1024), (1280, 800))
#: The smallest touch target, in CSS pixels, on each side.
TOUCH_PX: Final = 44

_MEASURE = """([selector, models, frameSelector]) => {
  const chat = document.querySelector(selector);
  const shadow = chat.shadowRoot;
  const view = {width: innerWidth, height: innerHeight};
  const rect = (node) => {
    const r = node.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,
            width: r.width, height: r.height};
  };
  const inView = (r) => r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0
    && r.right <= view.width + 0.5 && r.bottom <= view.height + 0.5;
  // Whether a person can press it: nothing else is on top of its middle.
  const onTop = (node) => {
    const r = node.getBoundingClientRect();
    const hit = shadow.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return hit !== null && (hit === node || node.contains(hit));
  };
  const frame = frameSelector ? shadow.querySelector(frameSelector) : null;
  const frameRect = frame ? rect(frame) : {top: 0, bottom: view.height, height: view.height,
                                           left: 0, right: view.width, width: view.width};
  const lanes = {};
  for (const model of models) {
    const lane = shadow.querySelector(`.lane[data-model="${model}"]`);
    const stop = lane?.querySelector("button.cancel");
    const replies = [...shadow.querySelectorAll(`.reply[data-model="${model}"]`)];
    const latest = replies.at(-1);
    const shown = latest && latest.getClientRects().length > 0 ? rect(latest) : null;
    lanes[model] = {
      status: lane?.querySelector(".lane-state")?.textContent ?? null,
      statusInView: lane ? inView(rect(lane.querySelector(".lane-state"))) : false,
      stopInView: stop ? inView(rect(stop)) && onTop(stop) : false,
      stopEnabled: stop ? !stop.disabled : false,
      reply: shown,
      replyInView: shown !== null && shown.bottom > 0 && shown.top < view.height
        && shown.height > 0 && (latest.querySelector(".md")?.textContent ?? "").length > 0,
    };
  }
  const log = shadow.querySelector(".log");
  const smallest = [...document.querySelectorAll("button"), ...shadow.querySelectorAll("button")]
    .filter((b) => b.getClientRects().length > 0)
    .map((b) => ({name: b.getAttribute("aria-label") || b.textContent.trim(),
                  width: b.getBoundingClientRect().width,
                  height: b.getBoundingClientRect().height}))
    .sort((a, b) => Math.min(a.width, a.height) - Math.min(b.width, b.height))[0] ?? null;
  const root = shadow.querySelector(".root");
  // How many rows the visible children of `node` take: a wrapped one starts below the others.
  const rows = (node) => {
    const boxes = [...node.children].filter((child) => child.getClientRects().length > 0)
      .map((child) => child.getBoundingClientRect()).sort((a, b) => a.top - b.top);
    let count = 0;
    let bottom = -Infinity;
    for (const box of boxes) {
      if (box.top >= bottom - 0.5) count += 1;
      bottom = Math.max(bottom, box.bottom);
    }
    return count;
  };
  return {
    barRows: rows(shadow.querySelector(".bar")),
    composerRows: rows(shadow.querySelector(".composer-row")),
    view,
    pageOverflow: document.documentElement.scrollWidth - view.width,
    widgetOverflow: Math.max(root.scrollWidth - root.clientWidth,
                             log.scrollWidth - log.clientWidth),
    layout: root.dataset.layout ?? "columns",
    logHeight: rect(log).height,
    frameHeight: frameRect.height,
    frameInView: inView(frameRect),
    lanes,
    smallest,
  };
}"""


@dataclass(frozen=True)
class Geometry:
    """What :func:`measure` read; ``lanes`` maps a model to what its lane shows."""

    raw: dict[str, Any]

    @property
    def layout(self) -> str:
        return str(self.raw["layout"])

    def lane(self, model: str) -> dict[str, Any]:
        lane: dict[str, Any] = self.raw["lanes"][model]
        return lane

    def problems(self, models: tuple[str, ...], *, streaming: bool = True) -> list[str]:
        """Everything wrong with the layout at this size, in words (none: it is right)."""
        raw = self.raw
        found: list[str] = []
        if raw["pageOverflow"] > 0:
            found.append(f"the page scrolls sideways by {raw['pageOverflow']} px")
        if raw["widgetOverflow"] > 0:
            found.append(f"the widget scrolls sideways by {raw['widgetOverflow']} px")
        if not raw["frameInView"]:
            found.append("the room's frame is not wholly in the window")
        if raw["logHeight"] < 0.5 * raw["frameHeight"]:
            found.append(f"the conversation is {raw['logHeight']} of {raw['frameHeight']} px high")
        if self.layout == "tabs" and (raw["barRows"], raw["composerRows"]) != (1, 1):
            found.append(f"narrow, yet the status bar or the composer wraps: {raw}")
        smallest = raw["smallest"]
        if smallest and min(smallest["width"], smallest["height"]) < TOUCH_PX - 0.5:
            found.append(f"a button is smaller than {TOUCH_PX} px: {smallest}")
        for model in models:
            lane = self.lane(model)
            if streaming and lane["status"] != "streaming":
                found.append(f"{model}'s lane says {lane['status']!r}, not streaming")
            if not lane["statusInView"]:
                found.append(f"{model}'s status is not in view")
            if not lane["stopInView"] or (streaming and not lane["stopEnabled"]):
                found.append(f"{model}'s Stop is not in view and enabled")
        return found


async def measure(
    page: Page, models: tuple[str, ...], *, selector: str = "rt-chat", frame: str | None = None
) -> Geometry:
    """Reads the widget's geometry; ``frame`` is the shadow part the room fills, if not the
    window (``.panel`` for the launcher)."""
    raw: dict[str, Any] = await page.evaluate(_MEASURE, [selector, list(models), frame])
    return Geometry(raw)


async def shoot(page: Page, folder: Path, name: str) -> Path:
    """A screenshot of the window, for a person to look at; its path is printed."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]  # type: ignore[index]
    path = folder / f"{name}-{width}x{height}.png"
    await page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path
