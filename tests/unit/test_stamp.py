"""`stamp = true`: demo models put their emit time on each token, and only demo models may."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from rtserver.config import ModelSpec, read_config_file
from rtserver.errors import ConfigError
from rtserver.protocol.codec import JSON, MSGPACK
from rtserver.protocol.frames import TokenEvent
from rtserver.providers.base import ChatTurn, GenerationRequest, TextDelta
from rtserver.providers.demo import DemoProvider
from rtserver.providers.registry import build_provider

_ASK = GenerationRequest(messages=(ChatTurn("user", "glaciers"),), max_tokens=5)


async def _texts(provider: DemoProvider) -> list[TextDelta]:
    return [d async for d in provider.stream(_ASK) if isinstance(d, TextDelta)]


async def test_a_stamping_demo_model_stamps_each_token_with_the_time_it_emitted_it() -> None:
    before = time.time_ns() // 1000
    tokens = await _texts(DemoProvider(tokens_per_s=1000, first_token_s=0, stamp=True))
    after = time.time_ns() // 1000
    assert all(t.emitted_us is not None for t in tokens)
    stamps = [t.emitted_us or 0 for t in tokens]
    assert len(stamps) == 5
    assert all(before <= s <= after for s in stamps)
    assert stamps == sorted(stamps)


async def test_demo_models_do_not_stamp_unless_asked() -> None:
    tokens = await _texts(DemoProvider(tokens_per_s=1000, first_token_s=0))
    assert tokens
    assert all(t.emitted_us is None for t in tokens)


@pytest.mark.parametrize("stamp", [True, False])
async def test_the_config_key_reaches_the_provider(stamp: bool) -> None:
    spec = ModelSpec(id="d", provider="demo", tokens_per_s=1000, first_token_s=0, stamp=stamp)
    provider = build_provider(spec, {})
    assert isinstance(provider, DemoProvider)
    tokens = await _texts(provider)
    assert all((t.emitted_us is not None) is stamp for t in tokens)


def test_stamp_is_read_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[models]]\nid = "d"\nprovider = "demo"\nstamp = true\n')
    assert read_config_file(path).models[0].stamp is True


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('provider = "openai"\nmodel = "gpt"\nstamp = true', "demo models only"),
        ('provider = "demo"\nstamp = "yes"', "Expected `bool`"),
    ],
)
def test_stamp_outside_demo_models_or_not_a_bool_is_refused(
    tmp_path: Path, line: str, expected: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[[models]]\nid = "m"\n{line}\n')
    with pytest.raises(ConfigError, match=expected):
        read_config_file(path)


def test_emitted_us_is_on_the_wire_only_when_stamped() -> None:
    stamped = TokenEvent(seq=1, stream="s", text="a", emitted_us=1_796_000_000_000_001)
    plain = TokenEvent(seq=1, stream="s", text="a")
    assert b'"emitted_us":1796000000000001' in JSON.encode(stamped)
    assert b"emitted_us" not in JSON.encode(plain)
    assert msgspec.json.decode(JSON.encode(stamped), type=TokenEvent) == stamped
    assert msgspec.msgpack.decode(MSGPACK.encode(stamped), type=TokenEvent) == stamped
