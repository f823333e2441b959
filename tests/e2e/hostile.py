"""A test-only provider whose answer is hostile markdown, streamed in small pieces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Final

from rtserver.providers.base import Delta, FinishDelta, GenerationRequest, TextDelta, UsageDelta

#: Each line tries another way to run script or to escape the reply's box. The answer ends
#: inside an unclosed code fence, as a stream that is cut off mid-block would.
HOSTILE_ANSWER: Final = "\n".join(
    (
        "Here is an image: <img src=x onerror=\"window.__pwned='img'\">",
        "",
        "<script>window.__pwned = 'script'</script>",
        "",
        "[a link](javascript:window.__pwned='link') and [another](JAVASCRIPT:alert(1))",
        "",
        "![picture](javascript:window.__pwned='image')",
        "",
        '<a href="#" onclick="window.__pwned=\'click\'">click me</a>',
        "",
        "<svg onload=\"window.__pwned='svg'\"></svg>",
        "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>",
        "",
        '<div style="position:fixed;inset:0;background:red">cover the page</div>',
        "",
        "| a | b |",
        "|---|---|",
        "| <b onmouseover=\"window.__pwned='table'\">x</b> | y |",
        "",
        "```html",
        "<script>window.__pwned = 'fence'</script>",
        "still inside an unclosed fence",
    )
)


class HostileProvider:
    """Answers every prompt with :data:`HOSTILE_ANSWER`, a few characters per delta.

    With ``hold``, it stops before the last line until the event is set.
    """

    kind = "demo"

    def __init__(self, *, chunk: int = 7, hold: asyncio.Event | None = None) -> None:
        self._chunk = chunk
        self._hold = hold

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        # Small chunks cut tags and attributes in half, so partial markup reaches the renderer.
        last_line = HOSTILE_ANSWER.rindex("\n") + 1
        for start in range(0, len(HOSTILE_ANSWER), self._chunk):
            if self._hold is not None and start <= last_line < start + self._chunk:
                # Mid-stream, inside the open fence: wait here until the test has looked.
                await self._hold.wait()
            yield TextDelta(HOSTILE_ANSWER[start : start + self._chunk])
        yield UsageDelta(input_tokens=1, output_tokens=len(HOSTILE_ANSWER) // self._chunk)
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None
