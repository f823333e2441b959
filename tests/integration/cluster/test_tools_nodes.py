"""Tools across nodes: a call waiting on one node is approved by a member on another."""

from __future__ import annotations

import aiohttp
import msgspec

from tests.conftest import ServerFactory, ws_url
from tests.fakes import openai_server as oai
from tests.integration.cluster.conftest import REDIS_URL
from tests.integration.test_tools import (
    KEY,
    asking_tool,
    calc_then_answer,
    ended,
    of,
    settings,
    vendor,  # noqa: F401 - the fixture
    waiting_call,
)
from tests.support import RoomClient


async def test_an_approval_on_another_node_reaches_the_waiting_call(
    start_server: ServerFactory,
    postgres_url: str,
    bus_prefix: str,
    http: aiohttp.ClientSession,
    vendor: oai.OpenAIServer,  # noqa: F811 - the fixture
) -> None:
    config = msgspec.structs.replace(
        settings(postgres_url, vendor, tools=asking_tool()),
        redis_url=REDIS_URL,
        bus_prefix=bus_prefix,
    )
    env = {"TEST_OPENAI_KEY": KEY}
    runner, other = await start_server(config, env=env), await start_server(config, env=env)
    calc_then_answer(vendor, ("call_1", "echo", '{"text": "ok"}'))
    ada = await RoomClient.connect(http, ws_url(runner, "tools"), name="ada")
    bob = await RoomClient.connect(http, ws_url(other, "tools"), name="bob")
    await ada.send({"type": "prompt", "id": "q1", "text": "echo"})
    approval = await waiting_call(bob)
    # A late joiner on the other node sees the call waiting in its snapshot.
    late = await RoomClient.connect(http, ws_url(other, "tools"), name="late")
    [running] = late.welcome["streams"]
    assert running["waiting"] == [approval["call"]]
    await bob.send({"type": "approve", "id": "a-1", "call": approval["call"], "allow": True})
    await ended(ada)
    await ended(bob)
    (decision,) = of(bob, "tool_decision")
    assert (decision["allow"], decision["by"]["name"]) == (True, "bob")
    assert of(bob, "tool_result")[0]["result"] == "ok"
    assert ada.room_events() == bob.room_events()
    # Decided: a second answer from the other node is not_found there, as on one node.
    await bob.send({"type": "approve", "id": "a-2", "call": approval["call"], "allow": False})
    refused = await bob.wait_for(lambda f: f["type"] == "error")
    assert (refused["code"], refused["ref"]) == ("not_found", "a-2")
    for client in (ada, bob, late):
        await client.close()
