"""The rules of a router model: which model answers a prompt, and who is next if it fails.

A router (``provider = "router"``) has ordered ``routes`` and a ``fallback`` list. The first
route whose ``when`` holds for the prompt names the chosen model; when none holds, the first of
``fallback`` is chosen. The candidates are the chosen model and then the fallback order, each
once: a stream that fails before its first token goes on with the next of them.

Pure: text in, a :class:`Choice` out. No I/O, no clock (the classifier is classifier.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rtserver.config import ModelSpec, Route, RouteWhen

#: A fenced block of Markdown (``` or ~~~ at the start of a line, after indentation).
_FENCES = ("```", "~~~")
#: The start of a line that reads as code: a keyword that opens a definition or an import,
#: or a preprocessor line. Matched at the start of a stripped line only.
_CODE_START = re.compile(
    r"(?:def|class|fn|func|function|import|from\s+\S+\s+import|const|let|var|public|private"
    r"|package|using|#include|#define|SELECT|INSERT|UPDATE|CREATE)\b"
)
#: Ends of lines that read as code: a statement's or a block's.
_CODE_ENDS = (";", "{", "}")
#: An arrow after a closing parenthesis: a lambda, or a function's return type.
_ARROW = re.compile(r"\)[ \t]*(?:=>|->)")
#: Lines that read as code needed, without a fence, for a prompt to hold code.
CODE_LINES = 2
#: Keywords shown in a route's reason and listing before the rest are counted.
_SHOWN_KEYWORDS = 3


def _reads_as_code(line: str) -> bool:
    # Plain string tests and anchored patterns only: every prompt is checked, and a pattern
    # that backtracks over a long line would let one prompt stall the server.
    return (
        line.endswith(_CODE_ENDS)
        or _CODE_START.match(line) is not None
        or _ARROW.search(line) is not None
    )


def contains_code(text: str) -> bool:
    """True when ``text`` holds a fenced block, or at least two lines that read as code."""
    found = 0
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(_FENCES):
            return True
        if line and _reads_as_code(line):
            found += 1
            if found >= CODE_LINES:
                return True
    return False


def _keyword_pattern(keywords: Iterable[str]) -> re.Pattern[str]:
    # Whole words, also for keywords that start or end with a symbol ("c++", ".net").
    words = sorted({k.strip().casefold() for k in keywords if k.strip()}, key=len, reverse=True)
    alternatives = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


@dataclass(frozen=True, slots=True)
class Choice:
    """A router's answer for one prompt: the models to try, in order, and why the first."""

    #: The chosen model first, then the rest of the fallback order; never empty, no repeats.
    candidates: tuple[str, ...]
    #: A short reason, for people: ``stream_start.route_reason``.
    reason: str

    @property
    def model(self) -> str:
        return self.candidates[0]


class Rule:
    """One route, compiled: does it hold for a prompt, and what to say when it does."""

    def __init__(self, route: Route) -> None:
        self.model = route.model
        self._when = route.when
        keywords = route.when.keywords
        self._keywords = _keyword_pattern(keywords) if keywords else None

    def match(self, text: str, *, has_code: bool) -> str | None:
        """The reason this route holds for ``text``, or None when it does not."""
        when = self._when
        parts: list[str] = []
        if when.contains_code is not None:
            if has_code != when.contains_code:
                return None
            parts.append("contains code" if has_code else "no code")
        length = len(text)
        if when.min_chars is not None:
            if length < when.min_chars:
                return None
            parts.append(f"{length} chars >= {when.min_chars}")
        if when.max_chars is not None:
            if length > when.max_chars:
                return None
            parts.append(f"{length} chars <= {when.max_chars}")
        if self._keywords is not None:
            found = self._keywords.search(text.casefold())
            if found is None:
                return None
            parts.append(f"keyword {found.group(0)!r}")
        return ", ".join(parts) or "every prompt"


class Router:
    """A router model's routes and fallback, ready to choose."""

    def __init__(self, spec: ModelSpec) -> None:
        if not spec.fallback:
            raise ValueError(f"router {spec.id!r} has no fallback")
        self.id = spec.id
        self.fallback = tuple(spec.fallback)
        self.rules = tuple(Rule(route) for route in spec.routes)
        self.classifier = spec.classifier
        self.classifier_timeout_s = spec.classifier_timeout_s

    @property
    def models(self) -> tuple[str, ...]:
        """Every model this router may choose, each once: routes in order, then fallback."""
        return tuple(dict.fromkeys([*(r.model for r in self.rules), *self.fallback]))

    def choose(self, text: str) -> Choice:
        """The first route that holds for ``text``, else the first fallback model."""
        has_code = contains_code(text)
        for number, rule in enumerate(self.rules, start=1):
            why = rule.match(text, has_code=has_code)
            if why is not None:
                return self.pick(rule.model, f"route {number}: {why}")
        return self.pick(self.fallback[0], "no route matched: first fallback")

    def pick(self, model: str, reason: str) -> Choice:
        """``model`` first, then the fallback order without it."""
        return Choice(candidates=tuple(dict.fromkeys([model, *self.fallback])), reason=reason)


#: Characters around a classifier's answer that do not change what it names.
_ANSWER_TRIM = " \t\r\n\"'`.,:;!*_()[]<>"


def parse_pick(answer: str, models: Sequence[str]) -> str | None:
    """The one model of ``models`` a classifier's ``answer`` names, or None.

    An answer that is a model id (case aside, quotes and punctuation around it aside) names it;
    so does an answer holding exactly one of the ids as a whole word. Anything else (no id,
    several, an empty answer) is nonsense, and the rules decide.
    """
    by_key = {m.casefold(): m for m in models}
    cleaned = answer.strip(_ANSWER_TRIM).casefold()
    if cleaned in by_key:
        return by_key[cleaned]
    named = {
        key
        for key in by_key
        if re.search(rf"(?<![\w.:/-]){re.escape(key)}(?![\w:/-]|\.\w)", cleaned) is not None
    }
    return by_key[named.pop()] if len(named) == 1 else None


def describe_when(when: RouteWhen) -> str:
    """A route's conditions in a few words, for ``rtserver models``."""
    parts: list[str] = []
    if when.contains_code is not None:
        parts.append("code" if when.contains_code else "no code")
    if when.min_chars is not None:
        parts.append(f">= {when.min_chars} chars")
    if when.max_chars is not None:
        parts.append(f"<= {when.max_chars} chars")
    if when.keywords:
        shown = ", ".join(when.keywords[:_SHOWN_KEYWORDS])
        more = len(when.keywords) - _SHOWN_KEYWORDS
        parts.append(f"keywords {shown}" + (f" (+{more})" if more > 0 else ""))
    return " and ".join(parts) or "any prompt"


def describe_routers(specs: Iterable[ModelSpec]) -> str:
    """What ``rtserver models`` adds for routers: each one's routes; empty without routers."""
    lines = [line for spec in specs if spec.is_router for line in describe_router(spec)]
    return "\n".join(["Routers (first matching route wins):", *lines]) if lines else ""


def describe_router(spec: ModelSpec) -> Sequence[str]:
    """The lines ``rtserver models`` prints for one router: its routes, fallback, classifier."""
    lines = [f"{spec.id}:"]
    for number, route in enumerate(spec.routes, start=1):
        lines.append(f"  {number}. {describe_when(route.when)} -> {route.model}")
    lines.append(f"  else -> {spec.fallback[0]}; after a failure: {', '.join(spec.fallback)}")
    if spec.classifier is not None:
        timeout = f"{spec.classifier_timeout_s:g}s"
        lines.append(f"  classifier {spec.classifier} (asked first, {timeout} to answer)")
    return lines
