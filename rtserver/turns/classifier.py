"""A router's classifier: a cheap model asked which candidate should answer a prompt.

The classifier has ``classifier_timeout_s`` to name one of the router's models. When it is too
slow, fails, or answers anything but one of them, the router's rules decide, and the reason says
why: routing never fails a prompt, and never waits longer than the timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import aclosing

from rtserver.errors import ProviderError
from rtserver.providers.base import ChatTurn, GenerationRequest, Provider, TextDelta
from rtserver.turns.router import Choice, Router, parse_pick

log = logging.getLogger(__name__)

#: Characters of the prompt the classifier is shown: enough to judge it, cheap to send.
PROMPT_CHARS = 2000
#: Characters of its answer read before giving up on it: an id is short.
ANSWER_CHARS = 200
#: Tokens the classifier may answer with.
ANSWER_TOKENS = 16


def classifier_request(text: str, labels: Mapping[str, str]) -> GenerationRequest:
    """What the classifier is asked: the candidates, then the prompt, for one id back."""
    listing = "\n".join(f"- {model}: {label}" for model, label in labels.items())
    question = (
        "You choose which model answers a user's prompt. Prefer the cheapest and fastest model "
        "that will answer it well. The models:\n"
        f"{listing}\n\n"
        "Answer with the id of one model and nothing else.\n\n"
        f"The prompt:\n{text[:PROMPT_CHARS]}"
    )
    return GenerationRequest(
        messages=(ChatTurn(role="user", content=question),),
        temperature=0.0,
        max_tokens=ANSWER_TOKENS,
    )


async def _answer(provider: Provider, request: GenerationRequest) -> str:
    parts: list[str] = []
    size = 0
    async with aclosing(provider.stream(request)) as deltas:
        async for delta in deltas:
            if isinstance(delta, TextDelta):
                parts.append(delta.text)
                size += len(delta.text)
                if size >= ANSWER_CHARS:
                    break
    return "".join(parts)[:ANSWER_CHARS]


async def classify(
    router: Router,
    text: str,
    *,
    classifier_id: str,
    provider: Provider,
    labels: Mapping[str, str],
) -> Choice:
    """The classifier's choice for ``text``, or the rules' choice when it gives none in time.

    The choice's other candidates are the rules' order: a failure of the classifier's model
    goes on with the model the rules would have chosen.
    """
    rules = router.choose(text)
    request = classifier_request(text, {m: labels.get(m, m) for m in router.models})
    try:
        async with asyncio.timeout(router.classifier_timeout_s):
            answer = await _answer(provider, request)
    except TimeoutError:
        return _rules_because(rules, f"classifier {classifier_id} too slow")
    except ProviderError as exc:
        return _rules_because(rules, f"classifier {classifier_id} failed: {exc.code}")
    except Exception:
        log.exception("classifier %s of router %s failed", classifier_id, router.id)
        return _rules_because(rules, f"classifier {classifier_id} failed")
    picked = parse_pick(answer, router.models)
    if picked is None:
        return _rules_because(rules, f"classifier {classifier_id} named no candidate")
    order = dict.fromkeys([picked, *rules.candidates])
    return Choice(candidates=tuple(order), reason=f"chosen by classifier {classifier_id}")


def _rules_because(rules: Choice, why: str) -> Choice:
    return Choice(candidates=rules.candidates, reason=f"{rules.reason} ({why})")
