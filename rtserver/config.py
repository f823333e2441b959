"""Settings: limits with safe defaults, and the models a server offers.

A TOML file (``rtserver serve --config PATH`` or env ``RTSERVER_CONFIG``) may hold ``[server]``,
``[limits]`` and ``[[models]]`` tables; every key is optional and validated with a message that
names it. Without any config, models are also found in the environment: ``OPENAI_API_KEY`` adds
model ``openai`` and ``ANTHROPIC_API_KEY`` adds model ``anthropic`` (see :func:`env_models`).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from rtserver.errors import ConfigError

ProviderKind = Literal["demo", "openai", "anthropic", "router"]
ToolId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
#: The id of the built-in tools (a calculator and a clock); no ``[[tools]]`` entry may take it.
BUILTIN_TOOLS = "builtin"
_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
ROOM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")
#: Pages served from this machine are its own user's; ``:*`` matches any port.
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:(\d{1,5}|\*))?")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Keys of ``params`` that the provider sets itself.
_RESERVED_PARAMS = ("model", "messages", "stream", "stream_options")

#: The models found in the environment, and what selects their vendor model.
OPENAI_ENV_MODEL = "gpt-4o-mini"
ANTHROPIC_ENV_MODEL = "claude-haiku-4-5"


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every limit the server enforces; each is a setting with a safe default."""

    #: Largest client frame read; a larger one closes the WebSocket with 1009.
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1 << 20
    #: Longest prompt, in code points.
    max_prompt_chars: Annotated[int, msgspec.Meta(ge=1)] = 32_000
    #: Prompts a participant may send per minute (a burst of this many, refilled steadily).
    prompts_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 60
    #: Typing on/off changes a participant may make per minute (each is sent to everyone).
    typing_changes_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 60
    #: Open connections (WebSocket or SSE) one client may hold at once; see docs on identity.
    connections_per_client: Annotated[int, msgspec.Meta(ge=1)] = 20
    #: Joins (welcomes) one client may ask for per minute, across all rooms.
    joins_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 60
    #: Pages of ``GET .../messages`` one client may ask for per minute.
    history_pages_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 120
    #: Output tokens one client's prompts may spend per UTC day; 0 means no budget.
    tokens_per_user_per_day: Annotated[int, msgspec.Meta(ge=0)] = 0
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
    # --- caps (docs/reference/config.md says why each default is what it is) ---
    #: Characters of its lane a model is sent, newest first; the newest message always goes.
    context_chars: Annotated[int, msgspec.Meta(ge=1)] = 120_000
    #: Rooms held in memory at once (idle ones are let go first to make room).
    rooms_max: Annotated[int, msgspec.Meta(ge=1)] = 1000
    #: Participants connected to one room at once.
    participants_per_room: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    #: Models one prompt may name.
    models_per_prompt: Annotated[int, msgspec.Meta(ge=1)] = 8
    #: Generations running at once, server-wide (rooms and ``/v1/chat``).
    streams_max: Annotated[int, msgspec.Meta(ge=1)] = 256
    #: Ceiling of a prompt's ``params.max_tokens`` for a model that configures none.
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] = 4096
    #: Characters of message text in ``welcome.messages`` (and in a room's memory), newest first.
    welcome_chars: Annotated[int, msgspec.Meta(ge=0)] = 200_000
    #: Characters of message text in one page of ``GET .../messages``; a page holds at least one.
    history_page_chars: Annotated[int, msgspec.Meta(ge=1)] = 1_000_000
    #: Bytes of one room's event log (twice its events' JSON: the frames and their encoding).
    event_log_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 8 << 20
    #: Bytes every room holds together for resume and welcomes (event logs, recent messages).
    room_memory_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 << 20
    #: Participants listed by name in ``welcome`` and ``presence_diff``; the rest are counted.
    presence_listed: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 100
    #: Seconds presence changes are gathered before one ``presence_diff`` tells them all.
    presence_interval: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.1
    #: Presence frames a room sends per second at most, to all its participants together: a
    #: big room gathers changes for longer (participants / this, when that is longer).
    presence_frames_per_s: Annotated[int, msgspec.Meta(ge=1)] = 5_000
    #: Milliseconds a stream's tokens are gathered into one ``token`` frame; 0: one per token.
    token_flush_ms: Annotated[float, msgspec.Meta(ge=0, le=1000)] = 10.0
    # --- tools (docs/reference/config.md, "[[tools]]") ---
    #: Rounds of tool calls one reply may make before the model must answer (per-model override).
    max_tool_steps: Annotated[int, msgspec.Meta(ge=0, le=100)] = 8
    #: Seconds a ``tool_approval`` waits for a member's ``approve``; then the call is denied.
    tool_approval_s: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    #: Characters of one tool result kept (published, stored and sent to the model).
    tool_result_chars: Annotated[int, msgspec.Meta(ge=1)] = 20_000
    #: Tool calls one step of a reply may make; more are answered with an error.
    tool_calls_per_step: Annotated[int, msgspec.Meta(ge=1, le=128)] = 16
    # --- the room's queue (issue 16) ---
    #: Prompts (and regenerates) one room holds waiting for its running streams to end.
    queue_max: Annotated[int, msgspec.Meta(ge=1)] = 20
    #: Streams one room runs at once; a turn that would run more is refused.
    streams_per_room: Annotated[int, msgspec.Meta(ge=1)] = 16


class RouteWhen(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When a route applies: every condition given must hold (none given: every prompt)."""

    #: True: the prompt holds code (a fenced block, or lines that read as code); false: none.
    contains_code: bool | None = None
    #: The prompt is at least / at most this many characters (code points).
    min_chars: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_chars: Annotated[int, msgspec.Meta(ge=0)] | None = None
    #: The prompt holds one of these words (case-insensitive, whole words).
    keywords: list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]] | None = None

    def __post_init__(self) -> None:
        low, high = self.min_chars, self.max_chars
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_chars ({low}) is more than max_chars ({high})")
        if self.keywords is not None and not any(k.strip() for k in self.keywords):
            raise ValueError("keywords must hold at least one word")


class Route(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One of a router's ``routes``: prompts that match ``when`` go to ``model``."""

    when: RouteWhen = msgspec.field(default_factory=RouteWhen)
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


#: Keys of a ``[[models]]`` table that only a router may have, and that a router may not have.
#: The id the protocol keeps for a router; other routers may have any id.
ROUTER_ID = "auto"
_ROUTER_ONLY = ("routes", "fallback", "classifier")
_NOT_FOR_ROUTERS = (
    "model",
    "base_url",
    "api_key_env",
    "tokens_per_s",
    "first_token_s",
    "stamp",
    "tools",
    "max_tool_steps",
)


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
    #: Demo models only: token frames carry ``emitted_us``, for latency measurement.
    stamp: bool = False
    #: Seconds to wait for the upstream server to connect or send its next bytes.
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    #: Routers only (``provider = "router"``): rules in order, the first that matches wins.
    routes: list[Route] = msgspec.field(default_factory=list)
    #: Routers only: the model when no route matches, and the order tried after a failure.
    fallback: list[Annotated[str, msgspec.Meta(min_length=1, max_length=128)]] = msgspec.field(
        default_factory=list
    )
    #: Routers only: a cheap model asked to choose among the candidates before the rules.
    classifier: str | None = None
    #: Routers only: seconds the classifier has to answer before the rules decide.
    classifier_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0
    #: Ids of ``[[tools]]`` entries (or ``builtin``) this model may call.
    tools: list[ToolId] = msgspec.field(default_factory=list)
    #: Overrides ``[limits] max_tool_steps`` for this model.
    max_tool_steps: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None

    def __post_init__(self) -> None:
        # Raised as ValueError so that msgspec adds where in the file it happened.
        if self.provider == "router":
            self._check_router()
            return
        if self.id == ROUTER_ID:
            raise ValueError(f"model id {ROUTER_ID!r} is kept for a router (provider = router)")
        for key in _ROUTER_ONLY:
            if getattr(self, key):
                raise ValueError(f"model {self.id!r}: `{key}` is for routers (provider = router)")
        if self.provider != "demo" and not self.model:
            raise ValueError(f"model {self.id!r} needs `model`, the vendor's model name")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"model {self.id!r}: `base_url` must start with http:// or https://")
        if self.api_key_env is not None and not _ENV_NAME.match(self.api_key_env):
            # The value is not repeated: it may well be the key itself, put in the wrong place.
            raise ValueError(
                f"model {self.id!r}: `api_key_env` must be the name of an environment variable "
                "(letters, digits and _), not the key itself"
            )
        if self.stamp and self.provider != "demo":
            raise ValueError(f"model {self.id!r}: `stamp` is offered by demo models only")
        _check_params(self.id, self.params)

    def _check_router(self) -> None:
        defaults = {
            f.name: f.default if f.default_factory is msgspec.NODEFAULT else f.default_factory()
            for f in msgspec.structs.fields(self)
        }
        for key in _NOT_FOR_ROUTERS:
            if getattr(self, key) != defaults[key]:
                raise ValueError(
                    f"router {self.id!r}: `{key}` belongs to the models it routes to, not to it"
                )
        if not self.fallback:
            raise ValueError(
                f"router {self.id!r} needs `fallback`: the models tried, in order, when no route "
                "matches and after a failure"
            )
        if self.params:
            raise ValueError(f"router {self.id!r}: `params` belong to the models it routes to")
        twice = sorted({m for m in self.fallback if self.fallback.count(m) > 1})
        if twice:
            raise ValueError(f"router {self.id!r}: fallback names {twice[0]!r} more than once")

    @property
    def is_router(self) -> bool:
        return self.provider == "router"

    @property
    def display_label(self) -> str:
        return self.label or self.id

    @property
    def key_env(self) -> str | None:
        """The environment variable that holds this model's API key, if it needs one.

        OpenAI-compatible servers at a ``base_url`` (Ollama, vLLM, ...) need none unless
        ``api_key_env`` names one.
        """
        if self.api_key_env:
            return self.api_key_env
        if self.provider in ("router", "demo"):
            return None
        if self.provider == "anthropic":
            return "ANTHROPIC_API_KEY"
        if self.provider == "openai" and self.base_url is None:
            return "OPENAI_API_KEY"
        return None


def _check_params(model_id: str, params: Mapping[str, object]) -> None:
    where = f"model {model_id!r}: params"
    for key in _RESERVED_PARAMS:
        if key in params:
            raise ValueError(f"{where}.{key} is set by rtserver and cannot be configured")
    temperature = params.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise ValueError(f"{where}.temperature must be a number from 0 to 2")
    max_tokens = params.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise ValueError(f"{where}.max_tokens must be a whole number of at least 1")
    system = params.get("system")
    if system is not None and not isinstance(system, str):
        raise ValueError(f"{where}.system must be a string")


class ToolConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ``[[tools]]`` table: a Python function or an MCP server."""

    id: ToolId
    kind: Literal["python", "mcp"]
    #: kind "python": ``module:callable``, imported when the server starts.
    function: str | None = None
    #: kind "python": the tool's name and description (else the callable's name and docstring)
    #: and its arguments' JSON schema (else made from the signature).
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    description: str | None = None
    parameters: dict[str, object] | None = None
    #: kind "mcp": the command that starts a stdio server, or a streamable HTTP ``url``.
    command: list[str] | None = None
    url: str | None = None
    #: kind "mcp": environment variables for the command, added to a minimal environment.
    env: dict[str, str] | None = None
    #: kind "mcp": the server's tools to offer (all when absent).
    expose: list[str] | None = None
    #: "ask": every call waits for a member's ``approve`` first.
    approval: Literal["auto", "ask"] = "auto"
    #: Seconds one call may take; then it ends with a ``timeout`` error the model sees.
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0

    def __post_init__(self) -> None:
        where = f"tool {self.id!r}"
        if self.id == BUILTIN_TOOLS:
            raise ValueError(f"{where}: the id {BUILTIN_TOOLS!r} is the built-in tools' own")
        if self.kind == "python":
            self._check_python(where)
        else:
            self._check_mcp(where)

    def _check_python(self, where: str) -> None:
        if self.function is None or not _FUNCTION.match(self.function):
            raise ValueError(f'{where}: kind "python" needs `function = "module:callable"`')
        stray = [k for k in ("command", "url", "env", "expose") if getattr(self, k) is not None]
        if stray:
            raise ValueError(f'{where}: `{stray[0]}` is for kind "mcp"')
        if self.parameters is not None and self.parameters.get("type") != "object":
            raise ValueError(f'{where}: `parameters` must be a JSON schema with type = "object"')

    def _check_mcp(self, where: str) -> None:
        if (self.command is None) == (self.url is None):
            raise ValueError(f'{where}: kind "mcp" needs either `command = [..]` or `url`')
        if self.command is not None and (not self.command or not all(self.command)):
            raise ValueError(f"{where}: `command` must be a non-empty list of non-empty strings")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"{where}: `url` must start with http:// or https://")
        if self.env is not None and self.command is None:
            raise ValueError(f"{where}: `env` is for a `command`")
        stray = [k for k in ("function", "name", "description", "parameters") if getattr(self, k)]
        if stray:
            raise ValueError(f'{where}: `{stray[0]}` is for kind "python"')


class ServerSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str | None = None
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    #: An SQLite file, or a ``postgresql://`` URL (rtserver/store/selection.py).
    db: str | None = None
    #: False removes the built-in demo models.
    demo_models: bool = True
    #: False stops models being added from OPENAI_API_KEY and ANTHROPIC_API_KEY.
    env_models: bool = True
    #: Peers whose ``X-Forwarded-For`` names the client (addresses or networks).
    trusted_proxies: list[str] = msgspec.field(default_factory=lambda: list(LOOPBACK_NETWORKS))
    #: Page origins besides the server's own that may connect and get CORS headers.
    allowed_origins: list[str] = msgspec.field(default_factory=lambda: list(LOOPBACK_ORIGINS))

    def __post_init__(self) -> None:
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {entry!r} is not an IP address or network"
                ) from None
        for origin in self.allowed_origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"allowed_origins: {origin!r} is not an origin like https://app.example.com"
                    " (scheme, host and optional port or :*, nothing after)"
                )


class AuthSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[auth]``: where the token secret is, and whether to run open on purpose."""

    #: The environment variable holding the HS256 secret of room tokens.
    secret_env: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = (
        "RTSERVER_SECRET"
    )
    #: True allows open mode (no tokens) on a host other than loopback.
    open: bool = False


class StoreSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: Messages older than this many days are deleted (0 keeps them forever).
    retain_days: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0


class BusSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[bus]``: the Redis that several nodes share (none: one node, the in-process bus)."""

    #: ``redis://``, ``rediss://`` or ``unix://`` URL of the Redis that carries rooms' events.
    redis_url: str | None = None
    #: What every key the bus writes starts with: deployments may share one Redis.
    key_prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "rt"

    def __post_init__(self) -> None:
        if self.redis_url is not None:
            check_redis_url(self.redis_url)


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def check_redis_url(url: str) -> str:
    """Return ``url`` if it names a Redis (``redis://``, ``rediss://``, ``unix://``)."""
    if not url.startswith(REDIS_SCHEMES) or len(url) > 2048:
        raise ValueError(f"redis_url: {url[:64]!r} is not a redis://, rediss:// or unix:// URL")
    return url


class ConfigFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    server: ServerSection = msgspec.field(default_factory=ServerSection)
    auth: AuthSection = msgspec.field(default_factory=AuthSection)
    store: StoreSection = msgspec.field(default_factory=StoreSection)
    bus: BusSection = msgspec.field(default_factory=BusSection)
    limits: Limits = msgspec.field(default_factory=Limits)
    models: list[ModelSpec] = msgspec.field(default_factory=list)
    tools: list[ToolConfig] = msgspec.field(default_factory=list)


DEMO_MODELS = (
    ModelSpec(
        id="demo",
        provider="demo",
        label="Demo (simulated, ~30 tok/s)",
        tokens_per_s=30.0,
        first_token_s=0.2,
        tools=[BUILTIN_TOOLS],
    ),
    ModelSpec(
        id="demo-fast",
        provider="demo",
        label="Demo fast (simulated, ~300 tok/s)",
        tokens_per_s=300.0,
        first_token_s=0.05,
        tools=[BUILTIN_TOOLS],
    ),
)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a running server is configured with."""

    host: str = "127.0.0.1"
    port: int = 8080
    db_path: str = "rtserver.db"
    limits: Limits = msgspec.field(default_factory=Limits)
    models: tuple[ModelSpec, ...] = DEMO_MODELS
    #: Page origins besides the server's own that may use it (``[server] allowed_origins``).
    allowed_origins: tuple[str, ...] = LOOPBACK_ORIGINS
    #: Peers whose ``X-Forwarded-For`` is believed (``[server] trusted_proxies``).
    trusted_proxies: tuple[str, ...] = LOOPBACK_NETWORKS
    auth: AuthSection = msgspec.field(default_factory=AuthSection)
    #: ``[store] retain_days``: messages older than this are deleted; 0 keeps them.
    retain_days: int = 0
    #: ``[bus]``: a Redis shared by several nodes, or None for the in-process bus.
    redis_url: str | None = None
    bus_prefix: str = "rt"
    #: ``[[tools]]`` entries, which models name in their ``tools``.
    tools: tuple[ToolConfig, ...] = ()

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
    open_mode: bool = False,
    redis_url: str | None = None,
) -> Settings:
    """Combine a config file, the environment and command-line values (which win)."""
    config = config or ConfigFile()
    env = os.environ if env is None else env
    models = _merge_models(config, env)
    _check_tools(config.tools, models)
    return Settings(
        host=host or config.server.host or "127.0.0.1",
        port=port if port is not None else (config.server.port or 8080),
        db_path=db_path or config.server.db or "rtserver.db",
        limits=config.limits,
        models=models,
        allowed_origins=tuple(config.server.allowed_origins),
        trusted_proxies=tuple(config.server.trusted_proxies),
        auth=msgspec.structs.replace(config.auth, open=True) if open_mode else config.auth,
        retain_days=config.store.retain_days,
        redis_url=_bus_url(redis_url or config.bus.redis_url, db_path or config.server.db),
        bus_prefix=config.bus.key_prefix,
        tools=tuple(config.tools),
    )


def _bus_url(redis_url: str | None, db: str | None) -> str | None:
    """The Redis of several nodes, which must share one PostgreSQL store, not an SQLite file."""
    if redis_url is None:
        return None
    try:
        check_redis_url(redis_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if db is None or not db.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "--redis (several nodes) needs a store they all share: --db postgresql://..."
        )
    return redis_url


def _check_tools(tools: list[ToolConfig], models: tuple[ModelSpec, ...]) -> None:
    """Tool ids are unique, and every id a model names is configured."""
    known = {BUILTIN_TOOLS}
    for tool in tools:
        if tool.id in known:
            raise ConfigError(f"tool id {tool.id!r} is configured twice")
        known.add(tool.id)
    for spec in models:
        for tool_id in spec.tools:
            if tool_id not in known:
                raise ConfigError(
                    f"model {spec.id!r}: tools names {tool_id!r}, which no [[tools]] entry has"
                    f" (configured: {', '.join(sorted(known))})"
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
    if config.server.env_models:
        for spec in env_models(config.models, env):
            models.setdefault(spec.id, spec)
    if not models:
        raise ConfigError("no models are configured (demo_models is false and no [[models]])")
    check_routers(models)
    return tuple(models.values())


def check_routers(models: Mapping[str, ModelSpec]) -> None:
    """Every model a router names exists and is not itself a router; else ConfigError."""
    for spec in models.values():
        if not spec.is_router:
            continue
        named = [("routes", r.model) for r in spec.routes]
        named += [("fallback", m) for m in spec.fallback]
        if spec.classifier is not None:
            named.append(("classifier", spec.classifier))
        for key, model_id in named:
            target = models.get(model_id)
            if target is None:
                known = ", ".join(sorted(m for m in models if not models[m].is_router))
                raise ConfigError(
                    f"router {spec.id!r}: {key} names model {model_id!r}, which is not "
                    f"configured (models: {known})"
                )
            if target.is_router:
                raise ConfigError(
                    f"router {spec.id!r}: {key} names {model_id!r}, another router; a router "
                    "routes to models that generate"
                )


class _Detected(msgspec.Struct, frozen=True):
    """How one vendor is found in the environment."""

    id: str
    provider: ProviderKind
    vendor: str
    key_env: str
    model_env: str
    model: str
    base_url_env: str


_DETECTED = (
    _Detected(
        id="openai",
        provider="openai",
        vendor="OpenAI",
        key_env="OPENAI_API_KEY",
        model_env="RTSERVER_OPENAI_MODEL",
        model=OPENAI_ENV_MODEL,
        base_url_env="OPENAI_BASE_URL",
    ),
    _Detected(
        id="anthropic",
        provider="anthropic",
        vendor="Anthropic",
        key_env="ANTHROPIC_API_KEY",
        model_env="RTSERVER_ANTHROPIC_MODEL",
        model=ANTHROPIC_ENV_MODEL,
        base_url_env="ANTHROPIC_BASE_URL",
    ),
)


def env_models(configured: list[ModelSpec], env: Mapping[str, str]) -> list[ModelSpec]:
    """Models that the usual environment variables make available without any config.

    ``OPENAI_API_KEY`` adds ``openai`` (``RTSERVER_OPENAI_MODEL``, else gpt-4o-mini, at
    ``OPENAI_BASE_URL`` if set); ``ANTHROPIC_API_KEY`` adds ``anthropic``
    (``RTSERVER_ANTHROPIC_MODEL``, else claude-haiku-4-5, at ``ANTHROPIC_BASE_URL`` if set).
    A configured model that uses the same key, or has the same id, takes the detected one's
    place. Detected models are never defaults: as the protocol says, a room's defaults are the
    models marked ``default`` in the file, or ``demo`` when none is, so a key in the environment
    never sends prompts (and money) somewhere nobody chose.
    """
    used_keys = {spec.key_env for spec in configured}
    ids = {spec.id for spec in configured}
    found: list[ModelSpec] = []
    for rule in _DETECTED:
        if not env.get(rule.key_env) or rule.key_env in used_keys or rule.id in ids:
            continue
        model = env.get(rule.model_env) or rule.model
        base_url = env.get(rule.base_url_env) or None
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{rule.base_url_env} must start with http:// or https://")
        found.append(
            ModelSpec(
                id=rule.id,
                provider=rule.provider,
                model=model,
                base_url=base_url,
                api_key_env=rule.key_env,
                label=f"{rule.vendor} {model}",
            )
        )
    return found
