"""Function tools: a Python callable named ``module:callable`` in the config.

The schema of its arguments comes from the signature (parameter annotations, through msgspec's
JSON Schema), and its description from the docstring's first paragraph, with each parameter's
line of a Google-style ``Args:`` section as that parameter's description; the config may give
either instead. Arguments are validated against the signature before the call, so a model's
malformed arguments become a ``bad_arguments`` result rather than an exception inside the tool.

An ``async def`` tool runs on the event loop and is cancelled where it awaits. A plain function
runs in a worker thread so that it cannot stall the server; a thread cannot be stopped, so a
cancelled or timed-out call's result is dropped when it comes.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, get_type_hints

import msgspec

from rtserver.config import ToolConfig
from rtserver.errors import ConfigError
from rtserver.tools.base import Tool, ToolError, ToolSpec

log = logging.getLogger(__name__)
_ARGS_HEADING = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$")


class FunctionTool:
    """One Python callable as a tool."""

    def __init__(
        self,
        function: Callable[..., object],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, object] | None = None,
    ) -> None:
        self._function = function
        self._signature = inspect.signature(function)
        self._arguments = _arguments_type(function, self._signature)
        doc = inspect.getdoc(function) or ""
        summary, arg_docs = _parse_doc(doc)
        self._spec = ToolSpec(
            name=name or function.__name__,
            description=description if description is not None else summary,
            parameters=parameters or _schema(self._arguments, arg_docs),
        )
        self._is_async = inspect.iscoroutinefunction(function)

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def call(self, args: Mapping[str, object]) -> str:
        try:
            decoded = msgspec.convert(dict(args), self._arguments)
        except msgspec.ValidationError as exc:
            raise ToolError("bad_arguments", f"arguments do not fit the schema: {exc}") from None
        kwargs = msgspec.structs.asdict(decoded)
        try:
            if self._is_async:
                result = await _awaited(self._function(**kwargs))
            else:
                result = await asyncio.to_thread(self._function, **kwargs)
        except ToolError:
            raise
        except Exception as exc:
            # The exception's text may hold anything (paths, secrets): the log gets it, the
            # room and the model get only its kind.
            log.warning("tool %s raised %s", self._spec.name, type(exc).__name__, exc_info=True)
            raise ToolError("failed", f"the tool raised {type(exc).__name__}") from None
        return result_text(result)


async def _awaited(value: object) -> object:
    if inspect.isawaitable(value):
        awaitable: Awaitable[object] = value
        return await awaitable
    return value


def result_text(result: object) -> str:
    """What the model is sent for a tool's return value: text as it is, anything else as JSON."""
    if isinstance(result, str):
        return result
    try:
        return msgspec.json.encode(result).decode()
    except (TypeError, msgspec.EncodeError):
        return str(result)


def _arguments_type(
    function: Callable[..., object], signature: inspect.Signature
) -> type[msgspec.Struct]:
    """A msgspec Struct whose fields are the function's parameters, for schema and validation."""
    try:
        hints = get_type_hints(function)
    except Exception:
        hints = {}
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.kind is param.POSITIONAL_ONLY:
            raise ConfigError(
                f"tool {function.__name__}: positional-only parameters cannot be named"
            )
        kind = hints.get(param.name, Any)
        if param.default is param.empty:
            fields.append((param.name, kind))
        else:
            fields.append((param.name, kind, param.default))
    return msgspec.defstruct(f"{function.__name__}_arguments", fields, forbid_unknown_fields=True)


def _schema(arguments: type[msgspec.Struct], arg_docs: Mapping[str, str]) -> dict[str, object]:
    """The object schema of the arguments, inlined (a model wants no top-level ``$ref``)."""
    full = msgspec.json.schema(arguments)
    defs = dict(full.get("$defs", {}))
    schema: dict[str, Any] = dict(defs.pop(arguments.__name__))
    schema.pop("title", None)
    properties = {name: dict(prop) for name, prop in schema.get("properties", {}).items()}
    for name, text in arg_docs.items():
        if name in properties:
            properties[name].setdefault("description", text)
    schema["properties"] = properties
    if defs:
        schema["$defs"] = defs
    return schema


def _parse_doc(doc: str) -> tuple[str, dict[str, str]]:
    """The docstring's first paragraph, and ``Args:`` lines by parameter name."""
    summary = doc.split("\n\n", 1)[0].strip()
    args: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        if _ARGS_HEADING.match(line):
            in_args = True
            continue
        if in_args:
            match = _ARG_LINE.match(line)
            if match:
                args[match.group(1)] = match.group(2).strip()
            elif line.strip() and not line.startswith((" ", "\t")):
                in_args = False
    return summary, args


def load_function(path: str, *, tool_id: str) -> Callable[..., object]:
    """Import ``module:callable``, with a ConfigError naming the entry when that fails."""
    module_name, _, attr = path.partition(":")
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"tool {tool_id!r}: cannot import {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"tool {tool_id!r}: {path!r} names nothing in the module") from None
    if not callable(target):
        raise ConfigError(f"tool {tool_id!r}: {path!r} is not callable")
    return target


class PythonSource:
    """A ``kind = "python"`` entry: one function tool."""

    def __init__(self, config: ToolConfig) -> None:
        assert config.function is not None
        self._id = config.id
        function = load_function(config.function, tool_id=config.id)
        try:
            self._tool = FunctionTool(
                function,
                name=config.name,
                description=config.description,
                parameters=config.parameters,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"tool {config.id!r}: no schema can be made: {exc}") from None

    @property
    def id(self) -> str:
        return self._id

    def tools(self) -> Sequence[Tool]:
        return (self._tool,)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
