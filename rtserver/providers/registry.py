"""Which provider serves a configured model."""

from __future__ import annotations

from collections.abc import Mapping

from rtserver.config import ModelSpec, Settings
from rtserver.errors import ConfigError
from rtserver.providers.base import Provider
from rtserver.providers.demo import DemoProvider


def build_provider(spec: ModelSpec, env: Mapping[str, str]) -> Provider:
    """The provider for one ``[[models]]`` entry."""
    if spec.provider == "demo":
        return DemoProvider(
            tokens_per_s=spec.tokens_per_s or 30.0,
            first_token_s=spec.first_token_s if spec.first_token_s is not None else 0.2,
        )
    raise ConfigError(f"provider {spec.provider!r} is not available yet")


def describe_models(settings: Settings, env: Mapping[str, str]) -> str:
    """What ``rtserver models`` prints: one line a model, never a key's value."""
    lines = []
    for spec in settings.models:
        key = "no key needed"
        if spec.api_key_env:
            key = f"{spec.api_key_env} {'set' if env.get(spec.api_key_env) else 'missing'}"
        default = " (default)" if spec.id in settings.default_model_ids() else ""
        lines.append(f"{spec.id}{default}\t{spec.provider}\t{spec.model or '-'}\t{key}")
    return "\n".join(lines)
