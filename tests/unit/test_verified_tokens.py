"""A token whose signature was checked is remembered: only its expiry is checked again."""

from __future__ import annotations

import time

import jwt
import pytest

from rtserver.auth.access import ADDRESSES_PARSED, _parse_ip
from rtserver.auth.tokens import VERIFIED_TOKENS, RoomTokens
from rtserver.errors import PeerError

SECRET = "verified-tokens-" + "s" * 40


class Clock:
    def __init__(self) -> None:
        # A whole second, so that a token's exp falls exactly on a tick of this clock.
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token PyJWT is asked to check, in order."""
    seen: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        seen.append(token)
        return real(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


def test_a_token_is_checked_once_and_its_claims_given_again(decodes: list[str]) -> None:
    tokens = RoomTokens(secret=SECRET)
    token = tokens.issue(sub="ada", rooms=["lobby"], ttl_s=60)
    first, again = tokens.verify(token), tokens.verify(token)
    assert again == first
    assert (again.sub, again.rooms) == ("ada", ["lobby"])
    assert decodes == [token]


def test_a_remembered_token_still_expires(decodes: list[str]) -> None:
    clock = Clock()
    tokens = RoomTokens(secret=SECRET, clock=clock)
    token = tokens.issue(sub="ada", rooms=["*"], ttl_s=60)
    tokens.verify(token)
    clock.now += 60  # exp itself is past, as PyJWT counts it
    with pytest.raises(PeerError) as refused:
        tokens.verify(token)
    assert (refused.value.code, refused.value.message) == (
        "unauthorized",
        "the token has expired: get a new one",
    )
    # Forgotten once expired: with the clock set back, the signature is checked anew.
    clock.now -= 60
    tokens.verify(token)
    assert decodes == [token, token]


def test_a_forged_token_is_never_remembered(decodes: list[str]) -> None:
    forged = RoomTokens(secret="another-secret-" + "x" * 40).issue(sub="eve", rooms=["*"], ttl_s=60)
    tokens = RoomTokens(secret=SECRET)
    for _ in range(2):
        with pytest.raises(PeerError, match="signature is not valid"):
            tokens.verify(forged)
    assert decodes == [forged, forged]


def test_the_least_recently_used_token_is_forgotten_first(decodes: list[str]) -> None:
    tokens = RoomTokens(secret=SECRET, remembered=2)
    one, two, three = (tokens.issue(sub=s, rooms=["*"], ttl_s=60) for s in ("a", "b", "c"))
    tokens.verify(one)
    tokens.verify(two)
    tokens.verify(one)  # now two is the least recently used
    tokens.verify(three)  # and is forgotten
    decodes.clear()
    tokens.verify(one)
    tokens.verify(three)
    assert decodes == []
    tokens.verify(two)
    assert decodes == [two]


def test_the_remembered_tokens_and_parsed_addresses_are_bounded() -> None:
    assert VERIFIED_TOKENS == 4096
    assert _parse_ip.cache_info().maxsize == ADDRESSES_PARSED == 4096
