"""How the demo models use the built-in tools: a calculator and a clock.

When a demo model is offered ``calculator`` and the newest prompt asks for arithmetic ("what is
17 * 23?"), or is offered ``clock`` and the prompt asks the time, its first step calls the tool;
once the results are in the request, its answer quotes them. So a person sees the whole tool
loop (the call's arguments streaming, the result, the model going on) with no key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from rtserver.providers.base import ChatTurn, GenerationRequest, ToolResultPart

_ASKS_ARITHMETIC = re.compile(
    r"\b(calculate|compute|evaluate|what is|what's|how much is|work out)\b", re.IGNORECASE
)
_EXPRESSION = re.compile(r"[-(\d][\d\s.()+\-*/%^]*[\d)]")
_OPERATOR = re.compile(r"\d\s*\)*\s*(\*\*|//|[+\-*/%^])\s*\(*\s*-?\d")
_ASKS_TIME = re.compile(
    r"\b(what time|the time|time is it|today's date|date today|what day is it)\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """The call a demo model makes: which tool, with which JSON arguments."""

    name: str
    args: str
    #: What the model says before the call.
    lead: str


def plan_call(request: GenerationRequest) -> PlannedCall | None:
    """The call the newest prompt asks for, if its tool is offered and has not run yet."""
    offered = {tool.name for tool in request.tools} if request.may_call else set()
    if not offered or _results_since_prompt(request) is not None:
        return None
    prompt = _last_prompt(request)
    if "calculator" in offered and _ASKS_ARITHMETIC.search(prompt):
        expression = _expression(prompt)
        if expression is not None:
            return PlannedCall(
                name="calculator",
                args=json.dumps({"expression": expression}),
                lead="Let me work that out with the calculator.",
            )
    if "clock" in offered and _ASKS_TIME.search(prompt):
        return PlannedCall(name="clock", args="{}", lead="I will look at the clock.")
    return None


def answer_from_results(request: GenerationRequest) -> str | None:
    """The demo model's answer once its call's results are in the request."""
    results = _results_since_prompt(request)
    if not results:
        return None
    sentences = [_sentence(result, _call_args(request, result.call)) for result in results]
    # The reply's text is every step's, joined: the answer starts a paragraph of its own.
    said_before = any(t.role == "assistant" and t.content for t in request.messages[-2:])
    return ("\n\n" if said_before else "") + " ".join(sentences)


def _sentence(result: ToolResultPart, args: str) -> str:
    if result.is_error:
        return f"The {result.name} could not help: {result.content}."
    if result.name == "calculator":
        expression = json.loads(args).get("expression", "?") if args else "?"
        return f"The calculator says {expression} = {result.content}."
    if result.name == "clock":
        return f"The clock says it is {result.content} (UTC)."
    return f"The {result.name} answered: {result.content}"


def _call_args(request: GenerationRequest, call: str) -> str:
    for turn in reversed(request.messages):
        for part in turn.tool_calls:
            if part.call == call:
                return part.args
    return ""


def _results_since_prompt(request: GenerationRequest) -> tuple[ToolResultPart, ...] | None:
    """The results of the last tool turn after the newest prompt; None when there is none."""
    for turn in reversed(request.messages):
        if turn.role == "user":
            return None
        if turn.role == "tool":
            return turn.tool_results
    return None


def _last_prompt(request: GenerationRequest) -> str:
    turn: ChatTurn
    for turn in reversed(request.messages):
        if turn.role == "user":
            return turn.content
    return ""


def _expression(prompt: str) -> str | None:
    """The longest stretch of the prompt that looks like arithmetic with an operator."""
    candidates = [m.group(0).strip() for m in _EXPRESSION.finditer(prompt)]
    candidates = [c for c in candidates if _OPERATOR.search(c)]
    if not candidates:
        return None
    return max(candidates, key=len).replace("^", "**")
