"""Routers at the socket: the real SDKs against the loopback vendor fakes, real WebSockets, a real
SQLite file. Rules, the classifier, fallback before the first token (never after), cancel while
routing, resume, and a restart with routed replies in the router's lane."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import ModelSpec, Settings
from tests.conftest import ServerFactory, ws_url
from tests.fakes import anthropic_server as anth
from tests.fakes import openai_server as oai
from tests.fakes.drive import refusing_port
from tests.integration import access_client as access
from tests.support import Frame, RoomClient, eventually, fast_settings, is_type

OPENAI_KEY = "sk-router-openai"
ANTHROPIC_KEY = "sk-ant-router"
ENV = {"TEST_OPENAI_KEY": OPENAI_KEY, "TEST_ANTHROPIC_KEY": ANTHROPIC_KEY}
CODE = "Why does this fail?\n```python\nprint(1/0)\n```"
LONG = "Tell me, in some detail and with examples, how a hash map works inside."


@dataclass
class Vendors:
    openai: oai.OpenAIServer
    anthropic: anth.AnthropicServer


@pytest.fixture
async def vendors() -> AsyncIterator[Vendors]:
    async with (
        oai.OpenAIServer(api_key=OPENAI_KEY) as openai,
        anth.AnthropicServer(api_key=ANTHROPIC_KEY) as anthropic,
    ):
        yield Vendors(openai, anthropic)


@pytest.fixture
def offline() -> Iterator[int]:
    with refusing_port() as port:
        yield port


def route(model: str, **when: Any) -> dict[str, Any]:
    return {"when": when, "model": model}


def settings(db_path: str, vendors: Vendors, offline: int) -> Settings:
    def openai(model_id: str, **fields: Any) -> ModelSpec:
        return ModelSpec(
            id=model_id,
            provider="openai",
            model=fields.pop("model", model_id),
            base_url=fields.pop("base_url", vendors.openai.base_url),
            api_key_env=fields.pop("api_key_env", "TEST_OPENAI_KEY"),
            timeout_s=5,
            **fields,
        )

    def make(spec: dict[str, Any]) -> ModelSpec:
        return msgspec.convert({"provider": "router", **spec}, ModelSpec)

    models = (
        openai("gpt", label="GPT"),
        ModelSpec(
            id="claude",
            provider="anthropic",
            model="claude",
            label="Claude",
            base_url=vendors.anthropic.base_url,
            api_key_env="TEST_ANTHROPIC_KEY",
            timeout_s=5,
            params={"max_tokens": 300},
        ),
        ModelSpec(id="demo", provider="demo", tokens_per_s=1500, first_token_s=0.01),
        openai("classify"),
        openai("gpt-offline", base_url=f"http://127.0.0.1:{offline}/v1"),
        openai("gpt-keyless", api_key_env="TEST_UNSET_KEY"),
        make(
            {
                "id": "auto",
                "label": "Auto",
                "default": True,
                "routes": [
                    route("gpt", contains_code=True),
                    route("claude", keywords=["translate"]),
                    route("demo", max_chars=40),
                ],
                "fallback": ["claude", "gpt"],
            }
        ),
        make({"id": "fragile", "routes": [route("gpt")], "fallback": ["claude"]}),
        make(
            {
                "id": "offline-first",
                "routes": [route("gpt-offline")],
                "fallback": ["gpt-keyless", "claude"],
            }
        ),
        # Answers must come in time even on a busy machine; the hasty one gives up at once.
        make(
            {
                "id": "smart",
                "routes": [route("gpt", contains_code=True)],
                "fallback": ["claude", "demo"],
                "classifier": "classify",
                "classifier_timeout_s": 30,
            }
        ),
        make(
            {
                "id": "hasty",
                "routes": [route("gpt", contains_code=True)],
                "fallback": ["claude", "demo"],
                "classifier": "classify",
                "classifier_timeout_s": 0.2,
            }
        ),
        make(
            {
                "id": "patient",
                "fallback": ["claude"],
                "classifier": "classify",
                "classifier_timeout_s": 30,
            }
        ),
    )
    return fast_settings(db_path, models=models)


@pytest.fixture
async def server(
    start_server: ServerFactory, db_path: str, vendors: Vendors, offline: int
) -> TestServer:
    return await start_server(settings(db_path, vendors, offline), env=ENV)


async def prompt(
    client: RoomClient, text: str, models: list[str] | None, pid: str, **extra: Any
) -> Frame:
    frame: dict[str, Any] = {"type": "prompt", "id": pid, "text": text, **extra}
    if models is not None:
        frame["models"] = models
    await client.send(frame)
    return await client.wait_for(is_type("message", prompt_id=pid))


async def routed_turn(
    client: RoomClient, text: str, models: list[str] | None, pid: str
) -> tuple[Frame, Frame]:
    """The ``stream_start`` and ``stream_end`` of a one-model turn."""
    message = await prompt(client, text, models, pid)
    start = await client.wait_for(is_type("stream_start", reply_to=message["id"]))
    end = await client.wait_for(is_type("stream_end", stream=start["stream"]))
    return start, end


def switches(client: RoomClient, stream: str) -> list[Frame]:
    return [f for f in client.of_type("model_switch") if f["stream"] == stream]


async def history(http: aiohttp.ClientSession, server: TestServer) -> list[Frame]:
    async with http.get(server.make_url("/v1/rooms/lobby/messages")) as response:
        return list((await response.json())["messages"])


async def test_rules_route_code_keywords_and_short_prompts_at_the_socket(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    vendors.openai.script(oai.text_reply("Division", " by zero"))
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    welcome = alice.welcome
    assert {"id": "auto", "label": "Auto", "provider": "router", "default": True} in welcome[
        "models"
    ]

    code, code_end = await routed_turn(alice, CODE, None, "p-code")
    assert (code["model"], code["routed_from"]) == ("gpt", "auto")
    assert code["route_reason"] == "route 1: contains code"
    assert code_end["reason"] == "complete"
    assert alice.texts()[code["stream"]] == "Division by zero"

    words, _ = await routed_turn(alice, "please translate 'chat' " + "x" * 40, ["auto"], "p-kw")
    assert (words["model"], words["route_reason"]) == ("claude", "route 2: keyword 'translate'")
    assert alice.texts()[words["stream"]] == "Hello from Claude"

    short, short_end = await routed_turn(alice, "hi there", ["auto"], "p-short")
    assert (short["model"], short["route_reason"]) == ("demo", "route 3: 8 chars <= 40")
    assert short_end["usage"] is not None

    other, _ = await routed_turn(alice, LONG, ["auto"], "p-long")
    assert (other["model"], other["route_reason"]) == ("claude", "no route matched: first fallback")

    await bob.wait_for(is_type("stream_end", stream=other["stream"]))
    assert alice.room_events() == bob.room_events()
    stored = [m for m in await history(http, server) if m["role"] == "assistant"]
    assert [(m["model"], m["routed_from"]) for m in stored] == [
        ("gpt", "auto"),
        ("claude", "auto"),
        ("demo", "auto"),
        ("claude", "auto"),
    ]


async def test_a_router_and_a_model_named_together_keep_lanes_of_their_own(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    message = await prompt(alice, LONG, ["auto", "claude"], "p1")
    await alice.wait_for(lambda _: len(alice.of_type("stream_end")) == 2)
    starts = [s for s in alice.of_type("stream_start") if s["reply_to"] == message["id"]]
    assert sorted((s["model"], s.get("routed_from", "-")) for s in starts) == [
        ("claude", "-"),
        ("claude", "auto"),
    ]
    vendors.anthropic.script(anth.text_reply("second"))
    await routed_turn(alice, LONG + " again", ["auto"], "p2")
    lane = vendors.anthropic.requests[-1].body["messages"]
    # The router's lane: both prompts and its own earlier reply, once, not claude's own.
    assert [m["role"] for m in lane] == ["user", "assistant", "user"]


async def test_the_classifier_chooses_and_the_rules_decide_when_it_is_slow_or_wrong(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    vendors.openai.script(oai.text_reply("demo"), model="classify")
    chosen, _ = await routed_turn(alice, LONG, ["smart"], "p1")
    assert (chosen["model"], chosen["route_reason"]) == ("demo", "chosen by classifier classify")
    asked = next(r for r in vendors.openai.requests if r.model == "classify")
    assert LONG in asked.body["messages"][-1]["content"]

    vendors.openai.script(oai.StreamReply([oai.Hang()]), model="classify")
    slow, _ = await routed_turn(alice, CODE, ["hasty"], "p2")
    assert (slow["model"], slow["route_reason"]) == (
        "gpt",
        "route 1: contains code (classifier classify too slow)",
    )

    vendors.openai.script(oai.text_reply("I would ask a human"), model="classify")
    wrong, _ = await routed_turn(alice, LONG, ["smart"], "p3")
    assert (wrong["model"], wrong["route_reason"]) == (
        "claude",
        "no route matched: first fallback (classifier classify named no candidate)",
    )


async def test_a_429_before_the_first_token_hands_the_stream_to_the_next_model(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    vendors.openai.script(oai.rate_limited(retry_after="7"))
    vendors.anthropic.script(anth.text_reply("Claude", " answers", output_tokens=2))
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    message = await prompt(alice, LONG, ["fragile"], "p1", params={"max_tokens": 1000})
    start = await alice.wait_for(is_type("stream_start", reply_to=message["id"]))
    end = await alice.wait_for(is_type("stream_end", stream=start["stream"]))
    assert (start["model"], start["routed_from"]) == ("gpt", "fragile")
    # Each candidate is asked within its own cap: gpt has none of its own, claude 300.
    assert vendors.openai.requests[0].body["max_tokens"] == 1000
    assert vendors.anthropic.requests[0].body["max_tokens"] == 300
    [switch] = switches(alice, start["stream"])
    assert switch["model"] == "claude"
    assert switch["reason"] == (
        "gpt failed before its first token: the provider's rate limit was reached; try again later"
    )
    tokens = [f for f in alice.of_type("token") if f["stream"] == start["stream"]]
    assert switch["seq"] < tokens[0]["seq"]
    assert alice.texts()[start["stream"]] == "Claude answers"
    assert end["reason"] == "complete"
    assert end["usage"]["output_tokens"] == 2
    assert end["ttft_ms"] is not None
    [stored] = [m for m in await history(http, server) if m["role"] == "assistant"]
    assert (stored["model"], stored["routed_from"], stored["text"]) == (
        "claude",
        "fragile",
        "Claude answers",
    )
    # A newcomer's snapshot tells the same story.
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    [reply] = [m for m in bob.welcome["messages"] if m["role"] == "assistant"]
    assert (reply["model"], reply["routed_from"]) == ("claude", "fragile")


async def test_a_refused_connection_and_a_missing_key_each_hand_the_stream_on(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    start, end = await routed_turn(alice, LONG, ["offline-first"], "p1")
    assert start["model"] == "gpt-offline"
    assert [(s["model"], s["reason"].split(":")[0]) for s in switches(alice, start["stream"])] == [
        ("gpt-keyless", "gpt-offline failed before its first token"),
        ("claude", "gpt-keyless failed before its first token"),
    ]
    assert switches(alice, start["stream"])[1]["reason"].endswith("TEST_UNSET_KEY is not set")
    assert end["reason"] == "complete"
    assert alice.texts()[start["stream"]] == "Hello from Claude"


async def test_no_fallback_after_the_first_token(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    vendors.openai.script(oai.StreamReply([oai.Text("Half an"), oai.StreamError()]))
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    start, end = await routed_turn(alice, LONG, ["fragile"], "p1")
    assert switches(alice, start["stream"]) == []
    assert end["reason"] == "error"
    assert alice.texts()[start["stream"]] == "Half an"
    assert vendors.anthropic.requests == []


async def test_every_candidate_failing_ends_the_stream_with_the_last_error(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    vendors.openai.script(oai.rate_limited())
    vendors.anthropic.script(anth.rate_limited())
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    start, end = await routed_turn(alice, LONG, ["fragile"], "p1")
    assert [s["model"] for s in switches(alice, start["stream"])] == ["claude"]
    assert end["reason"] == "error"
    assert end["error"]["code"] == "rate_limited"


async def test_cancel_while_the_classifier_thinks_ends_the_stream_and_its_request(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    vendors.openai.script(oai.StreamReply([oai.Hang()]), model="classify")
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    message = await prompt(alice, LONG, ["patient"], "p1")
    await eventually(lambda: any(r.model == "classify" for r in vendors.openai.requests))
    await alice.send({"type": "cancel", "id": "c1", "model": "patient"})
    start = await alice.wait_for(is_type("stream_start", reply_to=message["id"]))
    end = await alice.wait_for(is_type("stream_end", stream=start["stream"]))
    assert end["reason"] == "cancelled"
    assert (start["model"], start["routed_from"]) == ("claude", "patient")
    assert "stopped while routing" in start["route_reason"]
    asked = next(r for r in vendors.openai.requests if r.model == "classify")
    await asyncio.wait_for(asked.disconnected.wait(), 5)
    assert vendors.anthropic.requests == []
    assert not alice.of_type("error")


async def test_cancel_and_interrupt_name_a_router_for_its_streams(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    vendors.anthropic.script(anth.StreamReply([anth.Text("going"), anth.Hang()]))
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    message = await prompt(alice, LONG, ["auto"], "p1")
    start = await alice.wait_for(is_type("stream_start", reply_to=message["id"]))
    await alice.wait_for(is_type("token", stream=start["stream"]))
    await alice.send({"type": "cancel", "id": "c1", "model": "auto"})
    end = await alice.wait_for(is_type("stream_end", stream=start["stream"]))
    assert end["reason"] == "cancelled"
    assert alice.texts()[start["stream"]] == "going"

    await prompt(alice, LONG + "!", ["auto"], "p2")
    second = alice.of_type("stream_start")[-1]
    await alice.wait_for(is_type("token", stream=second["stream"]))
    await alice.send({"type": "interrupt", "id": "i1"})
    interrupted = await alice.wait_for(is_type("stream_end", stream=second["stream"]))
    assert interrupted["reason"] == "interrupted"
    await alice.send({"type": "cancel", "id": "c2", "model": "auto"})
    assert (await alice.wait_for(is_type("error", ref="c2")))["code"] == "not_found"


async def test_a_client_that_resumes_gets_the_switch_it_missed(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    release = asyncio.Event()
    vendors.openai.script(oai.rate_limited())
    vendors.anthropic.script(
        anth.StreamReply([anth.WaitFor(release), anth.Text("late"), anth.Stop()])
    )
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    welcome = bob.welcome
    await bob.ws.close()
    message = await prompt(alice, LONG, ["fragile"], "p1")
    start = await alice.wait_for(is_type("stream_start", reply_to=message["id"]))
    await alice.wait_for(is_type("model_switch", stream=start["stream"]))

    snapshot = await RoomClient.connect(http, ws_url(server), name="carol")
    [running] = snapshot.welcome["streams"]
    assert (running["model"], running["routed_from"]) == ("claude", "fragile")

    back = await RoomClient.connect(
        http, ws_url(server), name="bob", since={"epoch": welcome["epoch"], "seq": welcome["seq"]}
    )
    assert back.welcome["resumed"] is True
    switch = await back.wait_for(is_type("model_switch", stream=start["stream"]))
    assert switch["model"] == "claude"
    release.set()
    end = await back.wait_for(is_type("stream_end", stream=start["stream"]))
    assert end["reason"] == "complete"


async def test_after_a_restart_the_router_lane_holds_its_routed_replies(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendors: Vendors,
    offline: int,
) -> None:
    first = await start_server(settings(db_path, vendors, offline), env=ENV)
    alice = await RoomClient.connect(http, ws_url(first), name="alice")
    await routed_turn(alice, "hi there", ["auto"], "p1")
    vendors.anthropic.script(anth.text_reply("A hash map", " hashes."))
    await routed_turn(alice, LONG, ["auto"], "p2")
    await alice.ws.close()
    await first.close()

    again = await start_server(settings(db_path, vendors, offline), env=ENV)
    bob = await RoomClient.connect(http, ws_url(again), name="bob")
    stored = [m for m in bob.welcome["messages"] if m["role"] == "assistant"]
    assert [(m["model"], m["routed_from"]) for m in stored] == [
        ("demo", "auto"),
        ("claude", "auto"),
    ]

    vendors.openai.script(oai.text_reply("fixed"))
    await routed_turn(bob, CODE, ["auto"], "p3")
    lane = [(m["role"], m["content"]) for m in vendors.openai.requests[-1].body["messages"]]
    assert lane[0][0] == "user"
    assert lane[0][1] == "hi there"
    assert lane[1][0] == "assistant"  # demo's routed reply, made up by the demo model
    assert lane[2:] == [
        ("user", LONG),
        ("assistant", "A hash map hashes."),
        ("user", CODE),
    ]


async def test_a_one_shot_chat_with_a_router_names_the_model_that_answered(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    vendors.openai.script(oai.rate_limited())
    body = {"message": LONG, "model": "fragile"}
    async with http.post(server.make_url("/v1/chat"), json=body) as response:
        assert response.status == 200
        reply = await response.json()
    assert (reply["model"], reply["text"], reply["reason"]) == (
        "claude",
        "Hello from Claude",
        "complete",
    )
    async with http.post(
        server.make_url("/v1/chat"), json={"message": "hi", "model": "auto", "stream": True}
    ) as response:
        events = (await response.text()).split("\n\n")
    frames = [msgspec.json.decode(e.removeprefix("data: ")) for e in events if e.strip()]
    assert {f["type"] for f in frames} == {"token", "stream_end"}


async def test_a_token_that_allows_a_router_may_prompt_it_and_only_it(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendors: Vendors,
    offline: int,
) -> None:
    secured = await start_server(settings(db_path, vendors, offline), env={**ENV, **access.ENV})
    ada = await access.join(http, secured, token=access.token(models=["auto"]))
    assert [m["id"] for m in ada.welcome["models"]] == ["auto"]
    start, end = await routed_turn(ada, "hi there", ["auto"], "p1")
    assert (start["model"], end["reason"]) == ("demo", "complete")
    await ada.send({"type": "prompt", "id": "p2", "text": "hi", "models": ["demo"]})
    assert (await ada.wait_for(is_type("error", ref="p2")))["code"] == "forbidden"
