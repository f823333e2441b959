"""Regenerate at the socket: one model's reply to one prompt runs again (a completed, a
cancelled or a failed one, the failed model alone), history keeps both, and later turns send
the model its newest reply."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import aiohttp
from aiohttp.test_utils import TestServer

from rtserver.errors import ProviderError
from rtserver.providers.base import Delta, FinishDelta, GenerationRequest, TextDelta
from tests.conftest import ServerFactory, ws_url
from tests.integration.scripted_providers import Gate
from tests.support import Frame, RoomClient, is_type


class Numbered:
    """Answers ``answer 1``, ``answer 2``, ... and records what it was sent; with ``fail_first``
    its first answer fails after a few characters, as an overloaded vendor's would."""

    kind = "demo"

    def __init__(self, *, fail_first: bool = False) -> None:
        self.fail_first = fail_first
        self.requests: list[GenerationRequest] = []

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self.requests.append(request)
        if self.fail_first and len(self.requests) == 1:
            yield TextDelta("half")
            raise ProviderError("provider_error", "the provider is overloaded")
        yield TextDelta(f"answer {len(self.requests)}")
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None


def _sent(provider: Numbered | Gate, n: int) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in provider.requests[n].messages]


async def _turn(client: RoomClient, pid: str, models: list[str]) -> tuple[Frame, list[Frame]]:
    """Prompt and wait for every reply to end: the user message and the stream ends."""
    await client.send({"type": "prompt", "id": pid, "text": pid, "models": models})
    message = await client.wait_for(is_type("message", prompt_id=pid))
    return message, await _ends(client, message["id"], len(models))


async def _ends(client: RoomClient, reply_to: str, count: int) -> list[Frame]:
    def starts() -> list[Frame]:
        return [s for s in client.of_type("stream_start") if s["reply_to"] == reply_to]

    await client.wait_for(
        lambda _: len(starts()) >= count and all(client.ended(s["stream"]) for s in starts())
    )
    return [e for s in starts() if (e := client.ended(s["stream"])) is not None]


async def _regenerate(client: RoomClient, ref: str, model: str, reply_to: str) -> Frame:
    """Regenerate and wait for its stream to end; its stream_start."""
    known = {s["stream"] for s in client.of_type("stream_start")}
    await client.send({"type": "regenerate", "id": ref, "model": model, "reply_to": reply_to})
    start = await client.wait_for(
        lambda f: f["type"] == "stream_start" and f["stream"] not in known
    )
    await client.wait_for(is_type("stream_end", stream=start["stream"]))
    return start


async def _history(http: aiohttp.ClientSession, server: TestServer) -> list[Frame]:
    async with http.get(server.make_url("/v1/rooms/lobby/messages?limit=100")) as response:
        return list((await response.json())["messages"])


async def test_a_completed_reply_runs_again_and_later_turns_send_the_newest(
    start_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    slow = Numbered()
    server = await start_server(providers={"slow": slow})
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    first, _ = await _turn(alice, "first", ["slow"])
    old = alice.of_type("stream_start")[0]
    again = await _regenerate(alice, "g1", "slow", first["id"])
    assert (again["model"], again["reply_to"], again["replaces"]) == (
        "slow",
        first["id"],
        old["message"],
    )
    assert again["message"] != old["message"]
    # The regenerate was sent the lane up to the prompt, as the first answer was.
    assert _sent(slow, 1) == _sent(slow, 0) == [("user", "first")]
    await _turn(alice, "second", ["slow"])
    assert _sent(slow, 2) == [("user", "first"), ("assistant", "answer 2"), ("user", "second")]
    replies = [m for m in await _history(http, server) if m["role"] == "assistant"]
    assert [(m["text"], m.get("replaces")) for m in replies] == [
        ("answer 1", None),
        ("answer 2", old["message"]),
        ("answer 3", None),
    ]
    assert alice.of_type("error") == []


async def test_a_cancelled_reply_runs_again(
    start_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    gate = Gate()
    server = await start_server(providers={"slow": gate})
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    await alice.send({"type": "prompt", "id": "p", "text": "p", "models": ["slow"]})
    prompt = await alice.wait_for(is_type("message", prompt_id="p"))
    started = await alice.wait_for(is_type("stream_start"))
    await alice.wait_for(is_type("token", stream=started["stream"]))
    await alice.send({"type": "cancel", "stream": started["stream"]})
    assert (await alice.wait_for(is_type("stream_end")))["reason"] == "cancelled"
    await alice.send({"type": "regenerate", "id": "g", "model": "slow", "reply_to": prompt["id"]})
    again = await alice.wait_for(
        lambda f: f["type"] == "stream_start" and f["stream"] != started["stream"]
    )
    assert again["replaces"] == started["message"]
    gate.release()
    assert (await alice.wait_for(is_type("stream_end", stream=again["stream"])))["reason"] == (
        "complete"
    )
    replies = [m for m in await _history(http, server) if m["role"] == "assistant"]
    assert [(m["status"], m["text"]) for m in replies] == [
        ("cancelled", "started "),
        ("complete", "started done"),
    ]


async def test_a_failed_model_is_retried_alone(
    start_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    flaky = Numbered(fail_first=True)
    steady = Numbered()
    server = await start_server(providers={"slow": flaky, "quick": steady})
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    prompt, ends = await _turn(alice, "both", ["slow", "quick"])
    assert sorted(e["reason"] for e in ends) == ["complete", "error"]
    failed = next(s for s in alice.of_type("stream_start") if s["model"] == "slow")
    again = await _regenerate(alice, "retry", "slow", prompt["id"])
    assert again["replaces"] == failed["message"]
    assert [s["model"] for s in bob.of_type("stream_start")] == ["slow", "quick", "slow"]
    assert len(steady.requests) == 1, "the model that answered is not asked again"
    await bob.wait_for(is_type("stream_end", stream=again["stream"]))
    assert bob.ended(again["stream"])["reason"] == "complete"  # type: ignore[index]
    # The next turn sends the retried answer, not the half of the failed one.
    await _turn(alice, "next", ["slow"])
    assert _sent(flaky, 2) == [("user", "both"), ("assistant", "answer 2"), ("user", "next")]


async def test_a_regenerate_while_streams_run_waits_its_turn(
    start_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    gate = Gate()
    server = await start_server(providers={"slow": gate})
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    await alice.send({"type": "prompt", "id": "one", "text": "one", "models": ["slow"]})
    one = await alice.wait_for(is_type("message", prompt_id="one"))
    gate.release()
    await alice.wait_for(is_type("stream_end"))
    await alice.send({"type": "prompt", "id": "two", "text": "two", "models": ["slow"]})
    two = await alice.wait_for(is_type("message", prompt_id="two"))
    await alice.wait_count("stream_start", 2)
    await alice.send({"type": "regenerate", "id": "g", "model": "slow", "reply_to": one["id"]})
    await alice.send({"type": "ping", "id": "after"})
    await alice.wait_for(is_type("pong", id="after"))
    assert len(alice.of_type("stream_start")) == 2, "it waits for the running stream"
    gate.release()
    await alice.wait_count("stream_start", 3)
    again = alice.of_type("stream_start")[2]
    assert again["reply_to"] == one["id"]
    gate.release()
    await alice.wait_for(is_type("stream_end", stream=again["stream"]))
    # Regenerated up to its own prompt: the later turn is not part of what it was sent.
    assert [m.content for m in gate.requests[2].messages] == ["one"]
    assert two["id"] not in {s["reply_to"] for s in alice.of_type("stream_start")[2:]}


async def test_regenerate_refusals_name_what_is_wrong(
    start_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    server = await start_server(providers={"slow": Numbered()})
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    prompt, _ = await _turn(alice, "p", ["slow"])
    reply = alice.of_type("stream_start")[0]["message"]
    cases = [
        ("unknown-model", {"model": "nope", "reply_to": prompt["id"]}, "unknown_model"),
        ("unknown-message", {"model": "slow", "reply_to": "m_missing"}, "not_found"),
        ("no-reply-of-model", {"model": "quick", "reply_to": prompt["id"]}, "not_found"),
        ("an-assistant-message", {"model": "slow", "reply_to": reply}, "not_found"),
        ("hostile", {"model": "slow", "reply_to": "\x00\u202e'; --" + "é" * 100}, "not_found"),
        ("long-model", {"model": "x" * 129, "reply_to": prompt["id"]}, "bad_frame"),
        ("no-model", {"reply_to": prompt["id"]}, "bad_frame"),
        ("number", {"model": "slow", "reply_to": 7}, "bad_frame"),
    ]
    for ref, fields, code in cases:
        await alice.send({"type": "regenerate", "id": ref, **fields})
        error = await alice.wait_for(is_type("error", ref=ref))
        assert error["code"] == code, (ref, error)
        assert len(error["message"]) <= 300
    assert len(alice.of_type("stream_start")) == 1
    await alice.send({"type": "ping", "id": "alive"})
    await alice.wait_for(is_type("pong", id="alive"))
