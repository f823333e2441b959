"""Settings: limits with safe defaults, and the models a server offers.

A TOML file (``rtserver serve --config PATH`` or env ``RTSERVER_CONFIG``) may hold ``[server]``,
``[limits]`` and ``[[models]]`` tables; every key is optional and validated with a message that
names it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from rtserver.errors import ConfigError

ProviderKind = Literal["demo", "openai", "anthropic"]
ROOM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every limit the server enforces; each is a setting with a safe default."""

    #: Largest client frame read; a larger one closes the WebSocket with 1009.
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1 << 20
    #: Longest prompt, in code points.
    max_prompt_chars: Annotated[int, msgspec.Meta(ge=1)] = 32_000
    #: Prompts a participant may send per minute (a burst of this many, refilled steadily).
    prompts_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 60
    #: Messages of history in ``welcome.messages``.
    history_messages: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 50
    #: Bytes queued for one participant before it is closed with 4000 (slow consumer).
    outbox_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 4 << 20
    #: Room events kept in memory for resume, by count and by age in seconds.
    event_log_events: Annotated[int, msgspec.Meta(ge=1)] = 20_000
    event_log_seconds: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    #: Seconds a new connection has to send ``hello``.
    hello_timeout: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    #: Seconds between WebSocket pings; a peer that misses a pong is closed.
    heartbeat: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    #: Seconds between SSE comment heartbeats.
    sse_heartbeat: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    #: Seconds between checkpoints of a streaming reply's text.
    checkpoint_interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    #: Seconds an empty room with nothing running stays open (so resume still works).
    idle_room_seconds: Annotated[float, msgspec.Meta(ge=0)] = 600.0
    #: Earlier messages a model sees of its lane.
    context_messages: Annotated[int, msgspec.Meta(ge=1)] = 100


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ``[[models]]`` table."""

    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:/-]{1,128}$")]
    provider: ProviderKind
    model: str = ""
    base_url: str | None = None
    api_key_env: str | None = None
    label: str | None = None
    params: dict[str, object] = msgspec.field(default_factory=dict)
    default: bool = False
    #: Demo models only: tokens per second and seconds to the first token.
    tokens_per_s: Annotated[float, msgspec.Meta(gt=0)] | None = None
    first_token_s: Annotated[float, msgspec.Meta(ge=0)] | None = None
    #: Seconds before an upstream request is given up.
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 120.0

    @property
    def display_label(self) -> str:
        return self.label or self.id


class ServerSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str | None = None
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    db: str | None = None
    #: False removes the built-in demo models.
    demo_models: bool = True


class ConfigFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    server: ServerSection = msgspec.field(default_factory=ServerSection)
    limits: Limits = msgspec.field(default_factory=Limits)
    models: list[ModelSpec] = msgspec.field(default_factory=list)


DEMO_MODELS = (
    ModelSpec(
        id="demo",
        provider="demo",
        label="Demo (simulated, ~30 tok/s)",
        tokens_per_s=30.0,
        first_token_s=0.2,
    ),
    ModelSpec(
        id="demo-fast",
        provider="demo",
        label="Demo fast (simulated, ~300 tok/s)",
        tokens_per_s=300.0,
        first_token_s=0.05,
    ),
)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a running server is configured with."""

    host: str = "127.0.0.1"
    port: int = 8080
    db_path: str = "rtserver.db"
    limits: Limits = msgspec.field(default_factory=Limits)
    models: tuple[ModelSpec, ...] = DEMO_MODELS

    def default_model_ids(self) -> tuple[str, ...]:
        """The models a prompt without ``models`` goes to."""
        marked = tuple(m.id for m in self.models if m.default)
        if marked:
            return marked
        if any(m.id == "demo" for m in self.models):
            return ("demo",)
        return tuple(m.id for m in self.models[:1])


def read_config_file(path: str | Path) -> ConfigFile:
    """Parse and validate a TOML config file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return msgspec.toml.decode(raw, type=ConfigFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def build_settings(
    config: ConfigFile | None = None,
    *,
    env: Mapping[str, str] | None = None,
    host: str | None = None,
    port: int | None = None,
    db_path: str | None = None,
) -> Settings:
    """Combine a config file, the environment and command-line values (which win)."""
    config = config or ConfigFile()
    env = os.environ if env is None else env
    models = _merge_models(config, env)
    return Settings(
        host=host or config.server.host or "127.0.0.1",
        port=port if port is not None else (config.server.port or 8080),
        db_path=db_path or config.server.db or "rtserver.db",
        limits=config.limits,
        models=models,
    )


def _merge_models(config: ConfigFile, env: Mapping[str, str]) -> tuple[ModelSpec, ...]:
    models: dict[str, ModelSpec] = {}
    if config.server.demo_models:
        models.update((m.id, m) for m in DEMO_MODELS)
    seen: set[str] = set()
    for spec in config.models:
        if spec.id in seen:
            raise ConfigError(f"model id {spec.id!r} is configured twice")
        seen.add(spec.id)
        models[spec.id] = spec
    if not models:
        raise ConfigError("no models are configured (demo_models is false and no [[models]])")
    return tuple(models.values())
