"""The how-to's router configs load, and route the prompts the way the how-to says."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from rtserver.config import ConfigFile, build_settings
from rtserver.turns.router import Router

HOWTO = Path(__file__).parents[2] / "docs" / "howto" / "route-prompts.md"
ENV = {"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-ant-x"}


def _blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", HOWTO.read_text(encoding="utf-8"), re.DOTALL)


def _router(text: str) -> Router:
    settings = build_settings(msgspec.toml.decode(text.encode(), type=ConfigFile), env=ENV)
    return Router(next(m for m in settings.models if m.id == "auto"))


def test_the_cost_saving_router_routes_as_the_howto_says() -> None:
    full, _ = _blocks()
    router = _router(full)
    assert router.choose("def f():\n    return 1;\n").model == "gpt"
    assert router.choose("Please translate this letter " + "x" * 300).model == "haiku"
    short = router.choose("What is a monad?")
    assert short.model == "small"
    assert short.reason == "route 3: 16 chars <= 280"
    assert router.choose("word " * 100).candidates == ("haiku", "gpt", "small")


def test_the_classifier_example_loads_with_the_models_above_it() -> None:
    full, with_classifier = _blocks()
    models_only = full.split('[[models]]\nid = "auto"')[0]
    router = _router(models_only + with_classifier)
    assert router.classifier == "small"
    assert router.classifier_timeout_s == 1.5
