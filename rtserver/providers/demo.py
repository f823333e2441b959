"""The built-in demo model: no key, no network; it makes up a reply from the prompt's words.

Its pacing mimics a real model (a first-token delay, then a steady token rate) so that
concurrency, cancellation and resume can be seen and tested without any vendor. With
``params.reasoning = true`` (the prompt's, or the model's configured ``params``) it thinks aloud
first: a short plan streamed as reasoning, at the same pace, before the answer.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncGenerator, Mapping

from rtserver.providers.base import (
    Delta,
    FinishDelta,
    GenerationRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageDelta,
)
from rtserver.providers.demo_tools import PlannedCall, answer_from_results, plan_call
from rtserver.providers.params import call_params

_WORD = re.compile(r"[^\W\d_][\w'-]{2,}", re.UNICODE)
_STOPWORD_TEXT = (
    "the and for are but not you your with this that have from they what about which when "
    "there their would could should into than then them these those will just like does "
    "how why who can please tell think explain know want"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_OPENINGS = (
    "You asked about {topic}, so let me think it through step by step.",
    "Here is how I would look at {topic}.",
    "Good question about {topic}; a few points stand out.",
)
_SENTENCES = (
    "The first thing to notice about {w} is how it shapes everything around it.",
    "When people talk about {w}, they often skip the part where the details matter most.",
    "A simple way to picture {w} is as one piece of a larger system with moving parts.",
    "It helps to compare {w} with {v}, because the contrast makes both clearer.",
    "In practice, {w} behaves differently under load than it does on paper.",
    "Most mistakes with {w} come from assuming it works the same everywhere.",
    "If you measure {w} carefully, the surprising result is how steady it stays.",
    "The trade-off between {w} and {v} is where the interesting decisions are made.",
    "One more angle on {w}: what happens when it fails, and how you notice.",
    "So the short answer is that {w} matters, and {v} tells you why.",
)
ANSWER_TOKENS = 150
_PLAN = (
    "The question is about {topic}.",
    "I should start with what {w} means in practice,",
    "then set it against {v} so the difference is clear,",
    "and finish with a short answer that names the trade-off.",
    "A list of three points keeps it readable.",
)


def _keywords(request: GenerationRequest) -> list[str]:
    last_user = next((t.content for t in reversed(request.messages) if t.role == "user"), "")
    words = [w.lower() for w in _WORD.findall(last_user) if w.lower() not in _STOPWORDS]
    # Longer words tend to carry the topic ("caching", not "think"); the sort is stable, so
    # words of one length keep the prompt's order.
    unique = sorted(dict.fromkeys(words), key=len, reverse=True)
    return unique or ["this", "that"]


def compose_reply(request: GenerationRequest, *, tokens: int = ANSWER_TOKENS) -> list[str]:
    """The reply's tokens, at most ``tokens``, each but the first with its leading space.

    The reply is a little markdown (a paragraph, a list with bold terms, another paragraph),
    so that clients show incremental rendering with the demo model too.
    """
    words = _keywords(request)
    turn = sum(1 for t in request.messages if t.role == "user")
    sentences = _sentences(words, turn)
    opening = _OPENINGS[turn % len(_OPENINGS)].format(topic=" and ".join(words[:2]))
    intro = " ".join([opening, *sentences[:2]])
    points = "\n".join(f"- **{words[n % len(words)]}**: {sentences[n]}" for n in range(2, 5))
    text = "\n\n".join([intro, points, " ".join(sentences[5:])])
    pieces = text.split(" ")[:tokens]
    # End on a full stop rather than mid-sentence, unless that would cut the reply short.
    last_stop = max((n for n, p in enumerate(pieces) if p.endswith(".")), default=-1)
    if last_stop >= tokens * 3 // 4:
        pieces = pieces[: last_stop + 1]
    return [p if n == 0 else " " + p for n, p in enumerate(pieces)]


def compose_reasoning(request: GenerationRequest) -> list[str]:
    """The thinking before the reply, a plan of it, in tokens as :func:`compose_reply` makes."""
    words = _keywords(request)
    topic = " and ".join(words[:2])
    text = " ".join(_PLAN).format(topic=topic, w=words[0], v=words[1 % len(words)])
    pieces = text.split(" ")
    return [p if n == 0 else " " + p for n, p in enumerate(pieces)]


def _sentences(words: list[str], turn: int) -> list[str]:
    out: list[str] = []
    for i in range(len(_SENTENCES) * 2):
        w = words[i % len(words)]
        v = words[(i + 1) % len(words)]
        out.append(_SENTENCES[(i + turn) % len(_SENTENCES)].format(w=w, v=v))
    return out


class DemoProvider:
    """A simulated model with a configurable pace."""

    kind = "demo"

    def __init__(
        self,
        *,
        tokens_per_s: float = 30.0,
        first_token_s: float = 0.2,
        params: Mapping[str, object] | None = None,
        stamp: bool = False,
    ) -> None:
        self._interval = 1.0 / tokens_per_s
        self._first_token_s = first_token_s
        self._params = dict(params or {})
        #: True puts the emit time on each token, so that clients can measure latency.
        self._stamp = stamp

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        planned = plan_call(request)
        if planned is not None:
            async for delta in self._call(request, planned):
                yield delta
            return
        params = call_params(self._params, request)
        answer = answer_from_results(request)
        tokens = _pieces(answer) if answer is not None else compose_reply(request)
        limit = params.max_tokens
        cut = limit is not None and limit < len(tokens)
        if limit is not None:
            tokens = tokens[:limit]
        thinks = request.reasoning or params.extra.get("reasoning") is True
        thoughts = compose_reasoning(request) if thinks else []
        prompt_tokens = sum(len(t.content.split()) for t in request.messages)
        loop = asyncio.get_running_loop()
        start = loop.time() + self._first_token_s
        paced: list[tuple[bool, str]] = [(True, t) for t in thoughts]
        paced += [(False, t) for t in tokens]
        for n, (thought, token) in enumerate(paced):
            # Pace against the clock, not by fixed sleeps, so the rate holds however
            # busy the loop is and a burst of due tokens goes out together.
            delay = start + n * self._interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if thought:
                yield ReasoningDelta(token)
            else:
                yield TextDelta(token, time.time_ns() // 1000 if self._stamp else None)
        # Thinking is output too, as vendors count it.
        yield UsageDelta(input_tokens=prompt_tokens, output_tokens=len(paced))
        yield FinishDelta("length" if cut else "complete")

    async def _call(
        self, request: GenerationRequest, planned: PlannedCall
    ) -> AsyncGenerator[Delta, None]:
        """A step that says what it is doing, then calls a built-in tool."""
        loop = asyncio.get_running_loop()
        start = loop.time() + self._first_token_s
        lead = _pieces(planned.lead)
        # The arguments stream in a few fragments, as a real model's do.
        size = max(1, len(planned.args) // 3)
        fragments = [planned.args[i : i + size] for i in range(0, len(planned.args), size)]
        # Unique in a room, where an `approve` names a call by its id alone.
        call = f"call_{secrets.token_hex(8)}"
        for n, piece in enumerate([*lead, *fragments]):
            delay = start + n * self._interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if n < len(lead):
                yield TextDelta(piece, time.time_ns() // 1000 if self._stamp else None)
            else:
                first = n == len(lead)
                yield ToolCallDelta(call=call, args=piece, name=planned.name if first else None)
        prompt_tokens = sum(len(t.content.split()) for t in request.messages)
        yield UsageDelta(input_tokens=prompt_tokens, output_tokens=len(lead) + len(fragments))
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None


def _pieces(text: str) -> list[str]:
    """Text as demo tokens: words, each but the first with its leading space."""
    return [p if n == 0 else " " + p for n, p in enumerate(text.split(" "))]
