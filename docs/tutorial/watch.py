"""Join a room, optionally send a prompt, and print every model's stream as it arrives.

    python docs/tutorial/watch.py ws://127.0.0.1:8080/v1/rooms/tutorial/ws alice "Why?"
    python docs/tutorial/watch.py ws://127.0.0.1:8080/v1/rooms/tutorial/ws bob

It exits once every stream it has seen start has ended.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import aiohttp


async def watch(url: str, name: str, prompt: str | None) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, protocols=("rt.v1.json",)) as ws,
    ):
        await ws.send_json({"type": "hello", "name": name})
        welcome = await ws.receive_json()
        print(f"joined {welcome['room']} as {welcome['participant']['name']}")
        if prompt:
            # The id makes a prompt idempotent: a new prompt needs a new id.
            frame = {"type": "prompt", "id": uuid.uuid4().hex, "text": prompt}
            await ws.send_json(frame | {"models": ["demo", "demo-fast"]})
        model_of: dict[str, str] = {}
        running: set[str] = set()
        async for msg in ws:
            frame = json.loads(msg.data)
            if frame["type"] == "stream_start":
                model_of[frame["stream"]] = frame["model"]
                running.add(frame["stream"])
            elif frame["type"] == "token":
                print(f"[{model_of.get(frame['stream'], '?')}]{frame['text']}")
            elif frame["type"] == "stream_end":
                model = model_of.get(frame["stream"], "?")
                print(f"[{model}] ended: {frame['reason']}, {frame['tokens_per_s']} tokens/s")
                running.discard(frame["stream"])
                if not running:
                    return


if __name__ == "__main__":
    asyncio.run(watch(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
