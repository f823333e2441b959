"""Tools the server runs, at the socket: a real server, real WebSockets, the real OpenAI SDK
against the vendor fake, Python tools and a real MCP server (stdio and streamable HTTP)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits, ModelSpec, Settings, ToolConfig
from rtserver.keys import TOOLBOX
from rtserver.tools.mcp import MCPSource
from tests.conftest import ServerFactory, ws_url
from tests.fakes import openai_server as oai
from tests.integration import tool_functions
from tests.integration.access_client import ENV, bearer, join, token
from tests.integration.sse_client import SseClient
from tests.integration.test_mcp_tools import ROOT, SERVER, http_server, marks  # noqa: F401
from tests.support import Frame, RoomClient, eventually

KEY = "sk-tools-test"
FUNCTIONS = "tests.integration.tool_functions"


@pytest.fixture(autouse=True)
def fresh_functions() -> None:
    tool_functions.reset()
    tool_functions.MEETING.clear()


@pytest.fixture
async def vendor() -> AsyncIterator[oai.OpenAIServer]:
    async with oai.OpenAIServer(api_key=KEY) as server:
        yield server


def python_tool(tool_id: str, function: str, **fields: Any) -> ToolConfig:
    return ToolConfig(id=tool_id, kind="python", function=f"{FUNCTIONS}:{function}", **fields)


def settings(
    db_path: str,
    vendor: oai.OpenAIServer | None = None,
    *,
    tools: tuple[ToolConfig, ...] = (),
    model_tools: list[str] | None = None,
    limits: Limits | None = None,
) -> Settings:
    """A fast demo model with the built-in tools, and `gpt` (the fake) with ``model_tools``."""
    models = [
        ModelSpec(
            id="demo",
            provider="demo",
            tokens_per_s=500,
            first_token_s=0.01,
            default=vendor is None,
            tools=["builtin"],
        )
    ]
    if vendor is not None:
        models.append(
            ModelSpec(
                id="gpt",
                provider="openai",
                model="gpt-test",
                base_url=vendor.base_url,
                api_key_env="TEST_OPENAI_KEY",
                default=True,
                tools=model_tools if model_tools is not None else [t.id for t in tools],
            )
        )
    base = limits or Limits()
    return Settings(
        db_path=db_path,
        models=tuple(models),
        tools=tools,
        limits=msgspec.structs.replace(base, token_flush_ms=0),
    )


async def start(
    start_server: ServerFactory, config: Settings, *, env: dict[str, str] | None = None
) -> TestServer:
    return await start_server(config, env={"TEST_OPENAI_KEY": KEY, **(env or {})})


async def member(http: aiohttp.ClientSession, server: TestServer, name: str = "ada") -> RoomClient:
    return await RoomClient.connect(http, ws_url(server), name=name)


async def ask(client: RoomClient, text: str, models: list[str] | None = None) -> None:
    frame: Frame = {"type": "prompt", "id": f"p-{time.monotonic_ns()}", "text": text}
    if models is not None:
        frame["models"] = models
    await client.send(frame)


def of(client: RoomClient, kind: str, **fields: Any) -> list[Frame]:
    return [
        f
        for f in client.frames
        if f["type"] == kind and all(f.get(k) == v for k, v in fields.items())
    ]


async def ended(client: RoomClient, timeout: float = 20.0) -> Frame:
    return await client.wait_for(lambda f: f["type"] == "stream_end", timeout)


def calc_then_answer(vendor: oai.OpenAIServer, *calls: tuple[str, str, str]) -> None:
    """Step one makes ``calls`` ((id, name, args)); step two answers."""
    vendor.script_steps(
        oai.tool_call_reply([(c, n, [a[: len(a) // 2], a[len(a) // 2 :]]) for c, n, a in calls]),
        oai.text_reply("All ", "done."),
    )


# --- the loop, end to end ---------------------------------------------------------------------


async def test_the_demo_model_calls_the_calculator_and_answers_from_it(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start(start_server, settings(db_path))
    ada = await member(http, server)
    await ask(ada, "What is 17 * 23?")
    end = await ended(ada)
    assert end["reason"] == "complete"
    kinds = [f["type"] for f in ada.room_events()]
    first_call, result = kinds.index("tool_call"), kinds.index("tool_result")
    assert first_call < result < kinds.index("stream_end")
    assert "token" in kinds[result:], "the model goes on after the result"
    (tool_result,) = of(ada, "tool_result")
    assert (tool_result["name"], tool_result["result"]) == ("calculator", "391")
    assert "error" not in tool_result
    text = "".join(f["text"] for f in of(ada, "token"))
    assert text.endswith("The calculator says 17 * 23 = 391.")
    # One seq order, no gaps, across steps.
    seqs = [f["seq"] for f in ada.room_events()]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_calls_and_results_are_stored_with_the_reply_for_late_joiners_and_restarts(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start(start_server, settings(db_path))
    ada = await member(http, server)
    await ask(ada, "Please calculate (2 + 3) * 4")
    await ended(ada)
    live = of(ada, "tool_result")[0]
    late = await member(http, server, "late")
    reply = late.welcome["messages"][-1]
    (call,) = reply["tool_calls"]
    assert (call["call"], call["name"], call["result"]) == (live["call"], "calculator", "20")
    assert json.loads(call["args"]) == {"expression": "(2 + 3) * 4"}
    assert call["duration_ms"] == live["duration_ms"]
    assert reply["text"] == "".join(f["text"] for f in of(ada, "token"))
    await server.close()

    again = await start(start_server, settings(db_path))
    after_restart = await member(http, again, "after")
    assert after_restart.welcome["messages"][-1]["tool_calls"] == reply["tool_calls"]


async def test_a_python_tool_runs_and_the_next_request_carries_its_result(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    config = settings(db_path, vendor, tools=(python_tool("words", "echo"),))
    server = await start(start_server, config)
    calc_then_answer(vendor, ("call_1", "echo", '{"text": "héllo 🙂"}'))
    ada = await member(http, server)
    await ask(ada, "echo something")
    assert (await ended(ada))["reason"] == "complete"
    assert of(ada, "tool_result")[0]["result"] == "héllo 🙂"
    first, second = vendor.requests
    assert [t["function"]["name"] for t in first.body["tools"]] == ["echo"]
    assert second.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "héllo 🙂",
    }
    assert "".join(f["text"] for f in of(ada, "token")) == "All done."


async def test_two_calls_of_one_step_run_together(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    # `meet` returns only once both calls are running: one after the other, they never end.
    config = settings(db_path, vendor, tools=(python_tool("meet", "meet", timeout_s=10),))
    server = await start(start_server, config)
    calc_then_answer(
        vendor, ("call_a", "meet", '{"name": "a"}'), ("call_b", "meet", '{"name": "b"}')
    )
    ada = await member(http, server)
    await ask(ada, "meet")
    assert (await ended(ada))["reason"] == "complete"
    assert sorted(f["result"] for f in of(ada, "tool_result")) == ["met a", "met b"]
    tool_messages = [m for m in vendor.requests[1].body["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_a", "call_b"]


async def test_a_timeout_and_a_failure_become_error_results_the_model_sees(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    tools = (python_tool("slow", "hang", timeout_s=0.2), python_tool("broken", "fail"))
    server = await start(start_server, settings(db_path, vendor, tools=tools))
    calc_then_answer(vendor, ("call_h", "hang", "{}"), ("call_f", "fail", '{"reason": "x"}'))
    ada = await member(http, server)
    await ask(ada, "try")
    assert (await ended(ada))["reason"] == "complete"
    results = {f["call"]: f for f in of(ada, "tool_result")}
    assert results["call_h"]["error"]["code"] == "timeout"
    assert results["call_f"]["error"] == {"code": "failed", "message": "the tool raised OSError"}
    assert tool_functions.HANGS.cancelled.is_set()
    sent = {m["tool_call_id"]: m["content"] for m in vendor.requests[1].body["messages"][2:]}
    assert sent["call_h"].startswith("error (timeout):")
    assert "secret" not in json.dumps([f for f in ada.frames])


async def test_hostile_arguments_and_an_oversized_result_are_bounded(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    tools = (python_tool("big", "huge"), python_tool("words", "echo"))
    limits = Limits(tool_result_chars=1000)
    server = await start(start_server, settings(db_path, vendor, tools=tools, limits=limits))
    calc_then_answer(
        vendor,
        ("c_big", "huge", '{"size": 5000000}'),
        ("c_nest", "echo", "[" * 50_000),
        ("c_list", "echo", "[1, 2]"),
        ("c_type", "echo", '{"text": 5}'),
        ("c_extra", "echo", '{"text": "a", "shell": "rm -rf /"}'),
        ("c_none", "rm_rf", "{}"),
    )
    ada = await member(http, server)
    await ask(ada, "go")
    assert (await ended(ada))["reason"] == "complete"
    results = {f["call"]: f for f in of(ada, "tool_result")}
    big = results["c_big"]["result"]
    assert len(big) < 1100
    assert big.endswith("[cut: 4999000 more characters]")
    for call in ("c_nest", "c_list", "c_type", "c_extra"):
        assert results[call]["error"]["code"] == "bad_arguments", call
    assert results["c_none"]["error"]["code"] == "unknown_tool"
    # Each result the model is sent is as bounded as the one the room saw.
    sent = [m for m in vendor.requests[1].body["messages"] if m["role"] == "tool"]
    assert max(len(m["content"]) for m in sent) < 1100


async def test_a_model_that_keeps_calling_is_stopped_after_max_tool_steps(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    tools = (python_tool("words", "echo"),)
    server = await start(
        start_server, settings(db_path, vendor, tools=tools, limits=Limits(max_tool_steps=2))
    )
    again = oai.tool_call_reply([("call_x", "echo", ['{"text": "again"}'])])
    vendor.script(again)
    ada = await member(http, server)
    await ask(ada, "loop forever")
    assert (await ended(ada))["reason"] == "complete"
    assert len(vendor.requests) == 3
    assert vendor.requests[2].body["tool_choice"] == "none"
    last = of(ada, "tool_result")[-1]
    assert last["error"]["code"] == "failed"
    assert "at most 2 rounds" in last["error"]["message"]


# --- approvals ---------------------------------------------------------------------------------


def asking_tool() -> tuple[ToolConfig, ...]:
    return (python_tool("words", "echo", approval="ask"),)


async def waiting_call(client: RoomClient) -> Frame:
    return await client.wait_for(lambda f: f["type"] == "tool_approval")


async def test_a_second_participant_allows_a_call(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    server = await start(start_server, settings(db_path, vendor, tools=asking_tool()))
    calc_then_answer(vendor, ("call_1", "echo", '{"text": "ok"}'))
    ada, bob = await member(http, server, "ada"), await member(http, server, "bob")
    await ask(ada, "echo")
    approval = await waiting_call(bob)
    assert (approval["name"], approval["args"]) == ("echo", '{"text": "ok"}')
    assert not of(ada, "tool_result"), "nothing runs before the answer"
    await bob.send({"type": "approve", "id": "a-1", "call": approval["call"], "allow": True})
    await ended(ada)
    (decision,) = of(ada, "tool_decision")
    assert (decision["allow"], decision["by"]["name"]) == (True, "bob")
    assert of(ada, "tool_result")[0]["result"] == "ok"
    # The call is decided: a second answer is not_found.
    await ada.send({"type": "approve", "id": "a-2", "call": approval["call"], "allow": False})
    refused = await ada.wait_for(lambda f: f["type"] == "error")
    assert (refused["code"], refused["ref"]) == ("not_found", "a-2")


async def test_a_denied_call_never_runs_and_the_model_is_told(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    server = await start(start_server, settings(db_path, vendor, tools=asking_tool()))
    calc_then_answer(vendor, ("call_1", "echo", '{"text": "no"}'))
    ada = await member(http, server, "ada")
    await ask(ada, "echo")
    approval = await waiting_call(ada)
    await ada.send({"type": "approve", "call": approval["call"], "allow": False})
    await ended(ada)
    (result,) = of(ada, "tool_result")
    assert result["error"] == {"code": "denied", "message": "ada denied the call"}
    assert vendor.requests[1].body["messages"][-1]["content"] == (
        "error (denied): ada denied the call"
    )


async def test_an_unanswered_approval_times_out_as_a_denial(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    limits = Limits(tool_approval_s=0.2)
    server = await start(
        start_server, settings(db_path, vendor, tools=asking_tool(), limits=limits)
    )
    calc_then_answer(vendor, ("call_1", "echo", '{"text": "late"}'))
    ada = await member(http, server)
    await ask(ada, "echo")
    await ended(ada)
    (decision,) = of(ada, "tool_decision")
    assert decision["allow"] is False
    assert "by" not in decision
    assert of(ada, "tool_result")[0]["error"]["code"] == "denied"


async def test_a_viewer_may_not_approve_and_an_unknown_call_is_not_found(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    server = await start(start_server, settings(db_path, vendor, tools=asking_tool()), env=ENV)
    calc_then_answer(vendor, ("call_1", "echo", '{"text": "x"}'))
    ada = await join(http, server, token=token("ada"))
    viewer = await join(http, server, token=token("vic", role="viewer"))
    await ada.send({"type": "prompt", "id": "p-1", "text": "echo"})
    approval = await waiting_call(viewer)
    await viewer.send({"type": "approve", "id": "v-1", "call": approval["call"], "allow": True})
    refused = await viewer.wait_for(lambda f: f["type"] == "error")
    assert (refused["code"], refused["ref"]) == ("forbidden", "v-1")
    await ada.send({"type": "approve", "id": "a-1", "call": "no-such-call", "allow": True})
    unknown = await ada.wait_for(lambda f: f["type"] == "error")
    assert (unknown["code"], unknown["ref"]) == ("not_found", "a-1")
    # The call still waits for a member, who decides it.
    await ada.send({"type": "approve", "call": approval["call"], "allow": True})
    await ended(ada)
    assert of(ada, "tool_result")[0]["result"] == "x"


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "approve", "id": "m-1", "call": "c"},
        {"type": "approve", "id": "m-1", "call": "", "allow": True},
        {"type": "approve", "id": "m-1", "call": "c" * 129, "allow": True},
        {"type": "approve", "id": "m-1", "call": ["c"], "allow": True},
        {"type": "approve", "id": "m-1", "call": "c", "allow": "yes"},
    ],
)
async def test_a_malformed_approve_is_a_bad_frame_and_the_connection_stays(
    server: TestServer, http: aiohttp.ClientSession, frame: Frame
) -> None:
    ada = await member(http, server)
    await ada.send(frame)
    refused = await ada.wait_for(lambda f: f["type"] == "error")
    assert (refused["code"], refused["ref"]) == ("bad_frame", "m-1")
    await ada.send({"type": "ping", "id": "still-here"})
    await ada.wait_for(lambda f: f["type"] == "pong")


async def test_a_late_joiner_sees_the_waiting_call_and_may_answer_it(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    server = await start(start_server, settings(db_path, vendor, tools=asking_tool()))
    calc_then_answer(vendor, ("call_1", "echo", '{"text": "hi"}'))
    ada = await member(http, server, "ada")
    await ask(ada, "echo")
    approval = await waiting_call(ada)
    late = await member(http, server, "late")
    (running,) = late.welcome["streams"]
    assert running["waiting"] == [approval["call"]]
    assert running["tool_calls"][0]["args"] == '{"text": "hi"}'
    await late.send({"type": "approve", "call": approval["call"], "allow": True})
    await ended(ada)
    # A client that resumes from before the approval replays the decision and the result.
    since = {"epoch": ada.welcome["epoch"], "seq": approval["seq"]}
    resumed = await RoomClient.connect(http, ws_url(server), name="ada", since=since)
    assert resumed.welcome["resumed"] is True
    await resumed.wait_for(lambda f: f["type"] == "stream_end")
    assert [f["type"] for f in resumed.room_events()][:2] == ["tool_decision", "tool_result"]


# --- cancel ------------------------------------------------------------------------------------


async def test_cancel_during_a_tool_cancels_it_and_ends_the_stream(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    tools = (python_tool("slow", "hang", timeout_s=60),)
    server = await start(start_server, settings(db_path, vendor, tools=tools))
    calc_then_answer(vendor, ("call_h", "hang", "{}"))
    ada = await member(http, server)
    await ask(ada, "hang")
    await asyncio.wait_for(tool_functions.HANGS.started.wait(), 10)
    began = time.monotonic()
    await ada.send({"type": "cancel"})
    end = await ended(ada)
    await asyncio.wait_for(tool_functions.HANGS.cancelled.wait(), 10)
    print(f"cancel to stream_end: {(time.monotonic() - began) * 1000:.1f} ms")
    assert end["reason"] == "cancelled"
    assert not of(ada, "tool_result")
    assert len(vendor.requests) == 1, "the model is not asked again"
    late = await member(http, server, "late")
    stored = late.welcome["messages"][-1]
    assert stored["status"] == "cancelled"
    assert stored["tool_calls"][0]["call"] == "call_h"


async def test_interrupt_during_an_approval_withdraws_it(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    server = await start(start_server, settings(db_path, vendor, tools=asking_tool()))
    calc_then_answer(vendor, ("call_1", "echo", '{"text": "x"}'))
    ada = await member(http, server)
    await ask(ada, "echo")
    approval = await waiting_call(ada)
    await ada.send({"type": "interrupt"})
    assert (await ended(ada))["reason"] == "interrupted"
    await ada.send({"type": "approve", "id": "late", "call": approval["call"], "allow": True})
    refused = await ada.wait_for(lambda f: f["type"] == "error")
    assert refused["code"] == "not_found"


# --- MCP ---------------------------------------------------------------------------------------


def mcp_stdio(marks_dir: Path, **fields: Any) -> ToolConfig:
    return ToolConfig(
        id="local",
        kind="mcp",
        command=[*SERVER, "stdio", str(marks_dir)],
        env={"PYTHONPATH": str(ROOT)},
        timeout_s=fields.pop("timeout_s", 20.0),
        **fields,
    )


async def test_an_mcp_tool_over_stdio_runs_in_a_room(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
    marks: Path,  # noqa: F811
) -> None:
    config = settings(db_path, vendor, tools=(mcp_stdio(marks, expose=["add", "hang"]),))
    server = await start(start_server, config)
    calc_then_answer(vendor, ("call_1", "add", '{"a": 40, "b": 2}'))
    ada = await member(http, server)
    await ask(ada, "add")
    await ended(ada)
    assert of(ada, "tool_result")[0]["result"] == "42"
    offered = [t["function"]["name"] for t in vendor.requests[0].body["tools"]]
    assert offered == ["add", "hang"]


async def test_cancel_during_an_mcp_call_tells_the_mcp_server(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
    marks: Path,  # noqa: F811
) -> None:
    server = await start(start_server, settings(db_path, vendor, tools=(mcp_stdio(marks),)))
    calc_then_answer(vendor, ("call_1", "hang", "{}"))
    ada = await member(http, server)
    await ask(ada, "hang")
    await eventually(lambda: (marks / "called-hang").exists(), timeout=20)
    began = time.monotonic()
    await ada.send({"type": "cancel"})
    assert (await ended(ada))["reason"] == "cancelled"
    await eventually(lambda: (marks / "cancelled-hang").exists())
    print(f"cancel to the MCP server's cancellation: {(time.monotonic() - began) * 1000:.1f} ms")


async def test_an_mcp_server_that_dies_mid_call_is_a_failed_result_and_comes_back(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
    marks: Path,  # noqa: F811
) -> None:
    server = await start(start_server, settings(db_path, vendor, tools=(mcp_stdio(marks),)))
    calc_then_answer(vendor, ("call_1", "die", "{}"))
    ada = await member(http, server)
    await ask(ada, "die")
    await ended(ada)
    assert of(ada, "tool_result")[0]["error"]["code"] == "failed"
    calc_then_answer(vendor, ("call_2", "add", '{"a": 1, "b": 1}'))
    await eventually(lambda: len(list(marks.glob("started-*"))) == 2, timeout=20)
    await ask(ada, "add")
    await ada.wait_for(lambda f: f["type"] == "tool_result" and f["call"] == "call_2", 30)
    assert of(ada, "tool_result", call="call_2")[0]["result"] == "2"


async def test_an_mcp_tool_over_streamable_http_runs_in_a_room(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
    http_server: str,  # noqa: F811
) -> None:
    remote = ToolConfig(id="remote", kind="mcp", url=http_server, timeout_s=20)
    server = await start(start_server, settings(db_path, vendor, tools=(remote,)))
    # The HTTP server may still be starting: the source connects as soon as it answers.
    source = server.app[TOOLBOX].source("remote")
    assert isinstance(source, MCPSource)
    await eventually(lambda: source.connections > 0, timeout=30)
    calc_then_answer(vendor, ("call_1", "shout", '{"text": "quiet"}'))
    ada = await member(http, server)
    await ask(ada, "shout")
    await ended(ada, timeout=30)
    assert of(ada, "tool_result")[0]["result"] == "QUIET"


async def test_approve_over_sse_decides_a_call_and_answers_with_http_statuses(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,
) -> None:
    server = await start(start_server, settings(db_path, vendor, tools=asking_tool()), env=ENV)
    calc_then_answer(vendor, ("call_1", "echo", '{"text": "over sse"}'))
    base = server.make_url("/")
    ada_token, vic_token = token("ada"), token("vic", role="viewer")
    ada = await SseClient.connect(http, base, token=ada_token)
    vic = await SseClient.connect(http, base, name="vic", token=vic_token)

    async def post(client: SseClient, key: str, frame: Frame) -> tuple[int, Any]:
        status, body, _ = await client.post(frame, headers=bearer(key))
        return status, body

    assert (await post(ada, ada_token, {"type": "prompt", "id": "p-1", "text": "echo"}))[0] == 202
    approval = await ada.wait_for(lambda f: f["type"] == "tool_approval")
    answer = {"type": "approve", "id": "v", "call": approval["call"], "allow": True}
    status, body = await post(vic, vic_token, answer)
    assert (status, body["code"]) == (403, "forbidden")
    status, body = await post(ada, ada_token, answer | {"id": "u", "call": "nope"})
    assert (status, body["code"], body["ref"]) == (404, "not_found", "u")
    assert (await post(ada, ada_token, answer))[0] == 202
    await ada.wait_for(lambda f: f["type"] == "stream_end", 20)
    assert ada.of_type("tool_result")[0]["result"] == "over sse"
    ada.close()
    vic.close()
