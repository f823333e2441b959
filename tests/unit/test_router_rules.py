"""The router's rules: which route holds for a prompt, the candidate order, and the reason."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtserver.config import ModelSpec
from rtserver.turns.router import Router, contains_code, describe_routers, parse_pick

CODE_BLOCK = "Why does this fail?\n```python\nprint(1/0)\n```"
CODE_LINES = "fix this:\nint main() {\n  return 0;\n}"
PYTHON_LINES = "def area(r):\n    return 3.14 * r * r\nimport math"


def router(**table: object) -> Router:
    """A router from a ``[[models]]`` table as TOML would give it."""
    spec = msgspec.convert({"id": "auto", "provider": "router", **table}, ModelSpec)
    return Router(spec)


#: A cost-saving router: code to the strong model, short prompts to the fast one.
SAVER = router(
    routes=[
        {"when": {"contains_code": True}, "model": "coder"},
        {"when": {"keywords": ["translate", "C++", "résumé"]}, "model": "polyglot"},
        {"when": {"max_chars": 40}, "model": "fast"},
        {"when": {"min_chars": 2000, "contains_code": False}, "model": "long"},
    ],
    fallback=["general", "fast"],
)


@pytest.mark.parametrize(
    ("text", "model", "reason"),
    [
        (CODE_BLOCK, "coder", "route 1: contains code"),
        (CODE_LINES, "coder", "route 1: contains code"),
        (PYTHON_LINES, "coder", "route 1: contains code"),
        ("Please translate this sentence into German for me", "polyglot", "keyword 'translate'"),
        ("PLEASE TRANSLATE this sentence into German for me", "polyglot", "keyword 'translate'"),
        ("is c++ still worth learning in the year 2026 or not", "polyglot", "keyword 'c++'"),
        ("Could you improve my RÉSUMÉ before the interview please", "polyglot", "'résumé'"),
        ("translations are not the keyword, only whole words count", "general", "no route"),
        ("hi", "fast", "route 3: 2 chars <= 40"),
        ("x" * 40, "fast", "40 chars <= 40"),
        ("x" * 41, "general", "no route matched: first fallback"),
        ("word " * 400, "long", "route 4: no code, 2000 chars >= 2000"),
        ("One line; not code.", "fast", "route 3"),
        ("", "fast", "route 3"),
    ],
)
def test_the_first_route_that_holds_chooses(text: str, model: str, reason: str) -> None:
    choice = SAVER.choose(text)
    assert choice.model == model
    assert reason in choice.reason


def test_candidates_are_the_choice_then_the_fallback_order_each_once() -> None:
    assert SAVER.choose(CODE_BLOCK).candidates == ("coder", "general", "fast")
    assert SAVER.choose("hi").candidates == ("fast", "general")
    assert SAVER.choose("x" * 100).candidates == ("general", "fast")


def test_a_router_without_routes_uses_its_fallback() -> None:
    plain = router(fallback=["b", "a"])
    choice = plain.choose(CODE_BLOCK)
    assert choice.candidates == ("b", "a")
    assert choice.reason == "no route matched: first fallback"


def test_an_empty_when_holds_for_every_prompt() -> None:
    always = router(routes=[{"model": "x"}], fallback=["y"])
    assert always.choose("anything").reason == "route 1: every prompt"


def test_a_router_lists_every_model_it_may_choose_once_in_order() -> None:
    assert SAVER.models == ("coder", "polyglot", "fast", "long", "general")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CODE_BLOCK, True),
        ("~~~\nplain\n~~~", True),
        (CODE_LINES, True),
        (PYTHON_LINES, True),
        ("SELECT name FROM users\nWHERE id = 1;", True),
        ("const f = (x) => x + 1;\nlet y = f(2);", True),
        ("A sentence; and another.", False),
        ("Tell me about Python classes and functions.", False),
        ("Only one line of code: x = {}", False),
        ("", False),
        # Hostile prompts of the largest size: each is answered at once (a pattern that
        # backtracked over a long line took seconds on the first of them).
        (" " * 32_000, False),
        (")" + " \t" * 16_000, False),
        ("from " * 6_400, False),
        ("a;\n" * 16_000, True),
        ("x\n" * 16_000, False),
    ],
    ids=lambda value: value[:20] if isinstance(value, str) else str(value),
)
def test_what_counts_as_code(text: str, expected: bool) -> None:
    assert contains_code(text) is expected


@pytest.mark.parametrize(
    ("answer", "picked"),
    [
        ("fast", "fast"),
        ("  FAST\n", "fast"),
        ('"general".', "general"),
        ("`coder`", "coder"),
        ("I would pick coder.", "coder"),
        ("gpt-4.1", "gpt-4.1"),
        ("use gpt-4.1.", "gpt-4.1"),
        ("gpt-4", None),
        ("fast or coder", None),
        ("", None),
        ("banana", None),
        ("fastest", None),
        ("\x00\u202e", None),
    ],
)
def test_a_classifier_answer_names_one_candidate_or_none(answer: str, picked: str | None) -> None:
    assert parse_pick(answer, ("coder", "fast", "general", "gpt-4.1")) == picked


def test_models_lists_routers_with_their_routes() -> None:
    spec = msgspec.convert(
        {
            "id": "auto",
            "provider": "router",
            "routes": [
                {"when": {"contains_code": True}, "model": "coder"},
                {"when": {"max_chars": 200, "keywords": ["a", "b", "c", "d"]}, "model": "fast"},
            ],
            "fallback": ["general", "fast"],
            "classifier": "fast",
        },
        ModelSpec,
    )
    text = describe_routers([spec])
    assert text.splitlines() == [
        "Routers (first matching route wins):",
        "auto:",
        "  1. code -> coder",
        "  2. <= 200 chars and keywords a, b, c (+1) -> fast",
        "  else -> general; after a failure: general, fast",
        "  classifier fast (asked first, 2s to answer)",
    ]
    assert describe_routers([ModelSpec(id="demo", provider="demo")]) == ""


MODEL_IDS = st.sampled_from(["a", "b", "c", "d"])
WHENS = st.fixed_dictionaries(
    {},
    optional={
        "contains_code": st.booleans(),
        "min_chars": st.integers(0, 60),
        "max_chars": st.integers(60, 120),
        "keywords": st.lists(st.sampled_from(["alpha", "beta", "c++"]), min_size=1, max_size=2),
    },
)
ROUTERS = st.builds(
    lambda routes, fallback: router(
        routes=[{"when": w, "model": m} for w, m in routes], fallback=fallback
    ),
    st.lists(st.tuples(WHENS, MODEL_IDS), max_size=4),
    st.lists(MODEL_IDS, min_size=1, max_size=4, unique=True),
)
PROMPTS = st.lists(
    st.sampled_from([*"ab c+;{}\n`~éΣ", "alpha", "beta", "c++", "```", "def x"]), max_size=60
).map("".join)


@given(ROUTERS, PROMPTS)
def test_every_choice_is_a_known_model_then_the_fallback_each_once(
    chosen_by: Router, text: str
) -> None:
    choice = chosen_by.choose(text)
    assert choice.model in chosen_by.models
    assert len(set(choice.candidates)) == len(choice.candidates)
    assert set(choice.candidates) == {choice.model, *chosen_by.fallback}
    assert list(choice.candidates[1:]) == [m for m in chosen_by.fallback if m != choice.model]
    assert choice.reason
    assert chosen_by.choose(text) == choice


@given(st.integers(0, 200), st.integers(0, 200))
def test_length_bounds_are_inclusive(limit: int, length: int) -> None:
    short = router(routes=[{"when": {"max_chars": limit}, "model": "a"}], fallback=["b"])
    long = router(routes=[{"when": {"min_chars": limit}, "model": "a"}], fallback=["b"])
    text = "é" * length  # code points, not bytes
    assert (short.choose(text).model == "a") is (length <= limit)
    assert (long.choose(text).model == "a") is (length >= limit)
