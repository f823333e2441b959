"""Configured models become providers; ``rtserver models`` lists them without any key's value."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rtserver.cli import main
from rtserver.config import ModelSpec, Settings, build_settings
from rtserver.providers.anthropic import AnthropicProvider
from rtserver.providers.demo import DemoProvider
from rtserver.providers.openai import OpenAIProvider
from rtserver.providers.registry import base_url_of, build_provider, describe_models
from tests.fakes.drive import collect
from tests.fakes.openai_server import OpenAIServer, text_reply

OPENAI_KEY = "sk-proj-secret-value-1"
ANTHROPIC_KEY = "sk-ant-secret-value-2"


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer() as server:
        yield server


async def test_each_provider_kind_is_built() -> None:
    env = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    specs = [
        ModelSpec(id="d", provider="demo", tokens_per_s=100, first_token_s=0),
        ModelSpec(id="o", provider="openai", model="gpt-4o-mini"),
        ModelSpec(id="a", provider="anthropic", model="claude-haiku-4-5"),
    ]
    providers = [build_provider(spec, env) for spec in specs]
    try:
        assert [type(p) for p in providers] == [DemoProvider, OpenAIProvider, AnthropicProvider]
        assert [p.kind for p in providers] == ["demo", "openai", "anthropic"]
    finally:
        for provider in providers:
            await provider.aclose()


@pytest.mark.parametrize(
    ("spec", "variable"),
    [
        (ModelSpec(id="o", provider="openai", model="gpt-4o-mini"), "OPENAI_API_KEY"),
        (ModelSpec(id="a", provider="anthropic", model="claude"), "ANTHROPIC_API_KEY"),
        (
            ModelSpec(
                id="m",
                provider="openai",
                model="mistral-small-latest",
                base_url="https://api.mistral.ai/v1",
                api_key_env="MISTRAL_API_KEY",
            ),
            "MISTRAL_API_KEY",
        ),
    ],
)
async def test_a_missing_key_ends_each_stream_with_an_error_naming_the_variable(
    spec: ModelSpec, variable: str
) -> None:
    provider = build_provider(spec, {})

    outcome = await collect(provider)

    assert outcome.deltas == []
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.message) == (
        "provider_error",
        f"{variable} is not set",
    )
    await provider.aclose()


async def test_a_compatible_server_without_a_key_is_reached_without_one(
    fake: OpenAIServer,
) -> None:
    fake.script(text_reply("local", " answer"))
    spec = ModelSpec(id="llama", provider="openai", model="llama3.2", base_url=fake.base_url)
    provider = build_provider(spec, {})
    try:
        outcome = await collect(provider)
    finally:
        await provider.aclose()

    assert outcome.error is None
    assert outcome.text == "local answer"
    assert fake.requests[0].model == "llama3.2"


def test_base_urls_come_from_the_spec_then_the_vendor_variable_then_the_vendor() -> None:
    openai = ModelSpec(id="o", provider="openai", model="m")
    anthropic = ModelSpec(id="a", provider="anthropic", model="m")
    custom = ModelSpec(id="c", provider="openai", model="m", base_url="http://h:1/v1")

    assert base_url_of(openai, {}) == "https://api.openai.com/v1"
    assert base_url_of(openai, {"OPENAI_BASE_URL": "http://proxy/v1"}) == "http://proxy/v1"
    assert base_url_of(anthropic, {}) == "https://api.anthropic.com"
    assert base_url_of(custom, {"OPENAI_BASE_URL": "http://proxy/v1"}) == "http://h:1/v1"
    assert base_url_of(ModelSpec(id="d", provider="demo"), {}) is None


def test_the_listing_shows_every_model_and_whether_its_key_is_set() -> None:
    env = {"OPENAI_API_KEY": OPENAI_KEY}
    settings = Settings(
        models=(
            ModelSpec(id="demo", provider="demo"),
            ModelSpec(id="gpt", provider="openai", model="gpt-4o-mini", default=True),
            ModelSpec(id="claude", provider="anthropic", model="claude-haiku-4-5", label="Claude"),
            ModelSpec(
                id="llama",
                provider="openai",
                model="llama3.2",
                base_url="http://127.0.0.1:11434/v1",
            ),
        )
    )

    text = describe_models(settings, env)

    header, demo, gpt, claude, llama, *notes = text.splitlines()
    assert header.split() == ["ID", "PROVIDER", "MODEL", "DEFAULT", "KEY", "BASE", "URL", "LABEL"]
    assert demo.split() == ["demo", "demo", "-", "no", "not", "needed", "-", "demo"]
    assert gpt.split() == [
        "gpt",
        "openai",
        "gpt-4o-mini",
        "yes",
        "OPENAI_API_KEY",
        "set",
        "https://api.openai.com/v1",
        "gpt",
    ]
    assert claude.split()[3:] == [
        "no",
        "ANTHROPIC_API_KEY",
        "missing",
        "https://api.anthropic.com",
        "Claude",
    ]
    assert llama.split()[4:6] == ["not", "needed"]
    assert any("claude" in line and "missing key" in line for line in notes)
    assert OPENAI_KEY not in text


def test_rtserver_models_never_prints_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RTSERVER_CONFIG", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)

    assert main(["models"]) == 0

    out = capsys.readouterr().out
    assert "OPENAI_API_KEY set" in out
    assert "ANTHROPIC_API_KEY set" in out
    assert OPENAI_KEY not in out
    assert ANTHROPIC_KEY not in out


def test_detected_models_are_listed_but_not_as_defaults() -> None:
    env = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    text = describe_models(build_settings(None, env=env), env)
    [row] = [line for line in text.splitlines() if line.startswith("anthropic ")]
    assert row.split()[:6] == [
        "anthropic",
        "anthropic",
        "claude-haiku-4-5",
        "no",
        "ANTHROPIC_API_KEY",
        "set",
    ]
    assert [line.split()[0] for line in text.splitlines() if " yes " in line] == ["demo"]
