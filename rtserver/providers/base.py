"""The provider interface: one generation is an async iterator of typed deltas.

A provider turns a :class:`GenerationRequest` into deltas. The generation task iterates them
inside ``contextlib.aclosing``; cancelling that task raises ``CancelledError`` at the iterator's
current ``await``, and the iterator must then close its upstream request at once (its ``finally``
or ``async with`` blocks run), so nothing keeps generating in the background.

Errors cross this boundary only as :class:`rtserver.errors.ProviderError`, already mapped to our
codes with a message of our own; a provider never lets vendor exception text through.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Answer text: one or more tokens."""

    text: str
    #: Unix microseconds when the provider emitted it, from providers that stamp (demo).
    emitted_us: int | None = None
    #: How many tokens ``text`` is, when the vendor's stream says (a chunk of an OpenAI-compatible
    #: stream is one token); ``None`` when unknown. Used only when no usage is reported.
    tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Thinking text: tokens of the model's reasoning, kept apart from the answer.

    From Anthropic's ``thinking_delta`` events and the ``reasoning_content`` (or ``reasoning``)
    deltas of OpenAI-compatible servers. Never sent back to a model as part of its answer.
    """

    text: str
    #: As :attr:`TextDelta.tokens`.
    tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of one tool call's JSON arguments; ``name`` comes with the first fragment."""

    call: str
    args: str
    name: str | None = None
    #: As :attr:`TextDelta.tokens`, for the fragment.
    tokens: int | None = None


@dataclass(frozen=True, slots=True)
class UsageDelta:
    """Token counts as the vendor reported them; a later one replaces an earlier one."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class FinishDelta:
    """Why the model stopped: ``length`` when it hit ``max_tokens``, else ``complete``."""

    reason: Literal["complete", "length"]


Delta = TextDelta | ReasoningDelta | ToolCallDelta | UsageDelta | FinishDelta


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool the model may call: its name, what it does, and its arguments' JSON schema."""

    name: str
    description: str
    parameters: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """A call the model made in an earlier step of this reply; ``args`` is its JSON text."""

    call: str
    name: str
    args: str


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """What the server answered to one call: its result, or an error the model is told."""

    call: str
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One earlier message of the conversation as a model sees it.

    In a tool loop an ``assistant`` turn carries the step's ``tool_calls`` (its ``content`` is
    the step's text, maybe empty), and the ``tool`` turn after it carries their results; each
    vendor writes these in its own format (OpenAI ``tool_calls`` and ``tool`` messages,
    Anthropic ``tool_use`` and ``tool_result`` blocks).
    """

    role: Literal["user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCallPart, ...] = ()
    tool_results: tuple[ToolResultPart, ...] = ()


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What one model is asked: its lane of the conversation, newest last, and parameters.

    ``tools`` are the tools the model may call in this step. With ``may_call`` false they are
    still described (a conversation that holds tool calls needs them, for some vendors) but the
    model is told to answer without calling any: the last step of a tool loop.
    """

    messages: tuple[ChatTurn, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    extra: Mapping[str, object] = field(default_factory=dict)
    tools: tuple[ToolDefinition, ...] = ()
    may_call: bool = True
    #: The prompt's ``params.reasoning``: only the demo models act on it; a vendor model thinks
    #: when its configured ``params`` turn thinking on (docs/howto/configure-providers.md).
    reasoning: bool = False


class Provider(Protocol):
    """A source of generations for one configured model."""

    @property
    def kind(self) -> str:
        """The provider's name in config and ``welcome.models``: demo, openai, anthropic."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        """Start one generation; closing the iterator must close the upstream request."""
        ...

    async def aclose(self) -> None:
        """Release clients and connection pools when the server stops."""
        ...
