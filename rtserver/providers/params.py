"""Generation parameters: a model's configured defaults combined with a prompt's own.

``params`` of a ``[[models]]`` table holds defaults. Three keys mean the same for every vendor:
``temperature``, ``max_tokens`` and ``system`` (a system prompt). Any other key is sent to the
vendor as it is, in the request body (``top_p``, ``seed``, ``stop``, ``tools``, ...). A prompt's
``temperature`` and ``max_tokens`` win over the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from rtserver.providers.base import ChatTurn, GenerationRequest

#: Keys a provider sets itself; config may not override them.
RESERVED_PARAMS = frozenset({"model", "messages", "stream", "stream_options"})


@dataclass(frozen=True, slots=True)
class CallParams:
    """What one vendor call is sent besides the conversation."""

    temperature: float | None = None
    max_tokens: int | None = None
    system: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def body(self) -> dict[str, object]:
        """The request body fields sent as they are: the extra keys and the temperature.

        Each vendor adds ``max_tokens`` and ``system`` itself, as their names and places differ.
        """
        body = dict(self.extra)
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body


def call_params(defaults: Mapping[str, object], request: GenerationRequest) -> CallParams:
    """The defaults of a model, overridden by the request's own values."""
    merged = {**defaults, **request.extra}
    extra = {k: v for k, v in merged.items() if k not in ("temperature", "max_tokens", "system")}
    for key in RESERVED_PARAMS:
        extra.pop(key, None)
    temperature = request.temperature
    if temperature is None:
        temperature = _number(merged.get("temperature"))
    max_tokens = request.max_tokens
    if max_tokens is None:
        max_tokens = _integer(merged.get("max_tokens"))
    system = merged.get("system")
    return CallParams(
        temperature=temperature,
        max_tokens=max_tokens,
        system=system if isinstance(system, str) and system else None,
        extra=extra,
    )


def conversation(request: GenerationRequest) -> list[ChatTurn]:
    """The turns worth sending: an empty turn (a reply that failed at once) says nothing.

    Anthropic rejects empty assistant turns outright, so they are dropped for every vendor; a
    step of a tool loop that made calls without text is not empty.
    """
    return [
        turn for turn in request.messages if turn.content or turn.tool_calls or turn.tool_results
    ]


def decoded_args(args: str) -> dict[str, object]:
    """A call's JSON arguments as an object, for vendors that want them decoded.

    The server ran (or refused) the call whatever its arguments were; arguments that are not a
    JSON object are sent back as an empty object, as the model was told they were bad.
    """
    try:
        value = json.loads(args) if args.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _integer(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value
