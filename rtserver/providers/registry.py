"""From configured models to providers, and the ``rtserver models`` listing.

A model whose key variable is not set still starts: it is listed (``rtserver models`` says the
key is missing, ``welcome.models`` lists it) and each of its streams ends at once with
``provider_error`` naming the variable, so one missing key never stops a server or a room.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

from rtserver.config import ModelSpec, Settings
from rtserver.errors import ProviderError
from rtserver.providers import errors
from rtserver.providers.anthropic import ANTHROPIC_BASE_URL, AnthropicProvider
from rtserver.providers.base import Delta, GenerationRequest, Provider
from rtserver.providers.demo import DemoProvider
from rtserver.providers.openai import OPENAI_BASE_URL, OpenAIProvider

#: Sent as the key to OpenAI-compatible servers that want none; the SDK insists on one.
NO_KEY = "no-key"


class UnavailableProvider:
    """A configured model that cannot run; each stream ends with the reason."""

    def __init__(self, *, kind: str, error: ProviderError) -> None:
        self._kind = kind
        self._error = error

    @property
    def kind(self) -> str:
        return self._kind

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        raise ProviderError(self._error.code, self._error.message)
        yield  # pragma: no cover - makes this an async generator like every provider

    async def aclose(self) -> None:
        return None


def base_url_of(spec: ModelSpec, env: Mapping[str, str]) -> str | None:
    """Where the model's requests go: its ``base_url``, the vendor's variable, or the vendor."""
    if spec.base_url:
        return spec.base_url
    if spec.provider == "openai":
        return env.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
    if spec.provider == "anthropic":
        return env.get("ANTHROPIC_BASE_URL") or ANTHROPIC_BASE_URL
    return None


def build_provider(spec: ModelSpec, env: Mapping[str, str]) -> Provider:
    """The provider for one configured model, with its key read from ``env``.

    A router generates nothing itself (the turns layer streams from the model it chooses):
    its provider only says so, should anything ever ask it.
    """
    if spec.provider == "router":
        return UnavailableProvider(kind="router", error=errors.router_streamed(spec.id))
    if spec.provider == "demo":
        return DemoProvider(
            tokens_per_s=spec.tokens_per_s or 30.0,
            first_token_s=spec.first_token_s if spec.first_token_s is not None else 0.2,
            params=spec.params,
            stamp=spec.stamp,
        )
    key_env = spec.key_env
    key = env.get(key_env) if key_env else NO_KEY
    if not key:
        assert key_env is not None
        return UnavailableProvider(kind=spec.provider, error=errors.key_missing(key_env))
    base_url = base_url_of(spec, env)
    assert base_url is not None
    # Both SDK providers take the same settings; only the vendor differs.
    vendor: type[OpenAIProvider | AnthropicProvider] = (
        OpenAIProvider if spec.provider == "openai" else AnthropicProvider
    )
    return vendor(
        model=spec.model,
        api_key=key,
        base_url=base_url,
        timeout_s=spec.timeout_s,
        params=spec.params,
        key_env=key_env,
        model_id=spec.id,
    )


def describe_models(settings: Settings, env: Mapping[str, str]) -> str:
    """What ``rtserver models`` prints: one row per model; for keys only set or missing."""
    defaults = set(settings.default_model_ids())
    header = ("ID", "PROVIDER", "MODEL", "DEFAULT", "KEY", "BASE URL", "LABEL")
    rows = [header]
    for spec in settings.models:
        key_env = spec.key_env
        if key_env is None:
            key = "not needed"
        else:
            key = f"{key_env} {'set' if env.get(key_env) else 'missing'}"
        rows.append(
            (
                spec.id,
                spec.provider,
                spec.model or "-",
                "yes" if spec.id in defaults else "no",
                key,
                base_url_of(spec, env) or "-",
                spec.display_label,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in rows
    ]
    missing = [spec.id for spec in settings.models if spec.key_env and not env.get(spec.key_env)]
    if missing:
        lines.append("")
        lines.append(
            "Models with a missing key are offered, but their replies end with an error "
            f"until the key is set: {', '.join(missing)}"
        )
    return "\n".join(lines)
