"""Join a room, optionally send a prompt, and print every model's stream as it arrives.

    python docs/tutorial/watch.py http://127.0.0.1:8080 tutorial alice "Why?"
    python docs/tutorial/watch.py http://127.0.0.1:8080 tutorial bob

It exits once every stream it has seen start has ended.
"""

from __future__ import annotations

import asyncio
import sys

from rtserver.client import RoomState, connect
from rtserver.protocol.frames import StreamEnd, TokenEvent, Welcome


async def watch(server: str, room_id: str, name: str, prompt: str | None) -> None:
    state = RoomState()
    async with connect(server, room_id, name=name) as room:
        if prompt:
            await room.prompt(prompt, models=["demo", "demo-fast"])
        async for event in room:
            state.apply(event)
            match event:
                case Welcome(room=room_name, participant=me) if state.snapshots == 1:
                    print(f"joined {room_name} as {me.name}")
                case TokenEvent(stream=stream, text=text):
                    print(f"[{model_of(state, stream)}]{text}")
                case StreamEnd(stream=stream, reason=reason, tokens_per_s=rate):
                    print(f"[{model_of(state, stream)}] ended: {reason}, {rate} tokens/s")
                    if not state.busy:
                        return


def model_of(state: RoomState, stream: str) -> str:
    reply = state.reply_of_stream(stream)
    return reply.model if reply else "?"


if __name__ == "__main__":
    server, room_id, name = sys.argv[1:4]
    asyncio.run(watch(server, room_id, name, sys.argv[4] if len(sys.argv) > 4 else None))
