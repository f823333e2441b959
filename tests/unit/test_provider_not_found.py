"""A 404 says what was tried: the log names the URL and the model; the peer's words never do.

The real SDKs are pointed at the loopback vendor fakes, with a ``base_url`` whose path the fake
does not serve (it answers a bare 404, as Ollama or llama.cpp do for an unknown path).
"""

from __future__ import annotations

import logging

import pytest

from rtserver.errors import ProviderError
from rtserver.providers.anthropic import AnthropicProvider
from rtserver.providers.errors import loggable_url
from rtserver.providers.openai import OpenAIProvider
from tests.fakes.anthropic_server import AnthropicServer
from tests.fakes.drive import collect_and_close
from tests.fakes.openai_server import OpenAIServer, error_reply

KEY = "sk-test-0123456789abcdef"
PROVIDERS_LOG = "rtserver.providers"


def _failure_line(caplog: pytest.LogCaptureFixture) -> str:
    [record] = [r for r in caplog.records if r.name == PROVIDERS_LOG]
    assert record.levelno == logging.WARNING
    return record.getMessage()


def _assert_private(error: ProviderError, *secrets: str) -> None:
    """The peer's message names no URL, host or port of the operator's configuration."""
    for secret in secrets:
        assert secret not in error.message
    assert "http" not in error.message


async def test_an_openai_base_url_without_v1_is_named_in_the_log_with_the_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with OpenAIServer(api_key=KEY) as fake:
        provider = OpenAIProvider(
            model="llama3.2", api_key=KEY, base_url=fake.origin, model_id="local-llama"
        )
        with caplog.at_level(logging.WARNING, logger=PROVIDERS_LOG):
            outcome = await collect_and_close(provider)

        # The fake never saw a request on its API path: the SDK asked for one without /v1.
        assert fake.requests == []
    error = outcome.error
    assert error is not None
    assert error.code == "provider_error"
    assert "404" in error.message
    assert "'llama3.2'" in error.message
    assert "is /v1 missing from base_url?" in error.message
    assert "server log" in error.message
    host_port = fake.origin.removeprefix("http://")
    _assert_private(error, host_port)
    line = _failure_line(caplog)
    assert f"POST {fake.origin}/chat/completions answered 404" in line
    assert "'local-llama'" in line
    assert f"at {fake.origin}" in line
    assert "'llama3.2'" in line
    assert "is /v1 missing from base_url?" in line
    assert KEY not in line


async def test_an_unknown_model_at_the_right_url_gets_no_path_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with OpenAIServer(api_key=KEY) as fake:
        fake.script(
            error_reply(404, message="The model `gpt-9` does not exist", code="model_not_found")
        )
        provider = OpenAIProvider(
            model="gpt-9", api_key=KEY, base_url=fake.base_url, model_id="newest"
        )
        with caplog.at_level(logging.WARNING, logger=PROVIDERS_LOG):
            outcome = await collect_and_close(provider)

    assert outcome.error is not None
    assert "'gpt-9'" in outcome.error.message
    assert "/v1" not in outcome.error.message
    # The vendor's own words reach neither the peer nor the log.
    assert "does not exist" not in outcome.error.message
    line = _failure_line(caplog)
    assert f"POST {fake.base_url}/chat/completions answered 404" in line
    assert "code=model_not_found" in line
    assert "'newest'" in line
    assert "does not exist" not in line


async def test_an_anthropic_base_url_ending_in_v1_is_named_in_the_log_with_the_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with AnthropicServer(api_key=KEY) as fake:
        base_url = f"{fake.base_url}/v1"
        provider = AnthropicProvider(
            model="claude-test", api_key=KEY, base_url=base_url, model_id="claude"
        )
        with caplog.at_level(logging.WARNING, logger=PROVIDERS_LOG):
            outcome = await collect_and_close(provider)

    error = outcome.error
    assert error is not None
    assert error.code == "provider_error"
    assert "base_url must not end in /v1" in error.message
    _assert_private(error, fake.origin.removeprefix("http://"))
    line = _failure_line(caplog)
    assert f"POST {fake.origin}/v1/v1/messages answered 404" in line
    assert "'claude'" in line
    assert f"at {base_url}" in line


async def test_without_a_model_id_the_log_names_the_vendor_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with OpenAIServer(api_key=KEY) as fake:
        provider = OpenAIProvider(model="solo", api_key=KEY, base_url=fake.origin)
        with caplog.at_level(logging.WARNING, logger=PROVIDERS_LOG):
            await collect_and_close(provider)

    assert _failure_line(caplog).startswith("model 'solo' (openai 'solo' at ")


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
        ("https://user:hunter2@llm.internal/v1?api-key=zzz#frag", "https://llm.internal/v1"),
        ("http://[::1]:8000/v1/", "http://[::1]:8000/v1/"),
        ("http://host:notaport/v1", "(unreadable URL)"),
    ],
)
def test_a_logged_url_keeps_no_credential(url: str, logged: str) -> None:
    assert loggable_url(url) == logged
