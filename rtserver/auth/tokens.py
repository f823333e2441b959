"""Room tokens: HS256 JWTs, issued by the operator's backend, naming who may do what.

Claims: ``sub`` (who), ``rooms`` (room ids; ``"*"`` all, a trailing ``*`` a prefix), ``role``
(``viewer`` or ``member``), ``name?``, ``models?`` (the model ids the bearer may prompt) and
``exp`` (Unix seconds). Only HS256 is accepted, so a token cannot pick its own algorithm.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Final, Literal

import jwt
import msgspec

from rtserver.errors import ConfigError, PeerError
from rtserver.protocol.frames import (
    Approve,
    Cancel,
    ClientFrame,
    Interrupt,
    Prompt,
    Regenerate,
    Withdraw,
)

ALGORITHM: Final = "HS256"
#: Shorter HS256 secrets can be guessed offline from any one token.
MIN_SECRET_CHARS: Final = 32
TokenRole = Literal["viewer", "member"]
#: A room id, ``*``, or a prefix ending in ``*``.
RoomPattern = Annotated[str, msgspec.Meta(min_length=1, max_length=65)]
#: What a viewer may not send: everything that starts, stops or steers a generation.
_ACTING_FRAMES: Final[dict[type, str]] = {
    Prompt: "prompt",
    Interrupt: "interrupt",
    Cancel: "cancel",
    Approve: "approve",
    Regenerate: "regenerate",
    Withdraw: "withdraw",
}


class Claims(msgspec.Struct, frozen=True, kw_only=True):
    """The claims of a room token, validated; unknown claims are ignored."""

    sub: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    rooms: list[RoomPattern] = msgspec.field(default_factory=list)
    role: TokenRole = "member"
    name: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    models: list[Annotated[str, msgspec.Meta(min_length=1, max_length=128)]] | None = None
    exp: int

    def allows_room(self, room_id: str) -> bool:
        """True when ``rooms`` names ``room_id``, ``"*"``, or a prefix of it ending in ``*``."""
        for pattern in self.rooms:
            if pattern.endswith("*"):
                if room_id.startswith(pattern[:-1]):
                    return True
            elif pattern == room_id:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Grant:
    """What one participant may do in a room: its role and the models it may prompt."""

    role: TokenRole = "member"
    #: None: every model the server offers.
    models: frozenset[str] | None = None

    def allows_model(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models

    def check(self, frame: ClientFrame, *, defaults: Iterable[str]) -> None:
        """Raise ``forbidden`` when the frame is not this participant's to send."""
        acting = _ACTING_FRAMES.get(type(frame))
        if self.role == "viewer" and acting is not None:
            raise PeerError("forbidden", f"a viewer's token does not allow {acting}")
        if isinstance(frame, Prompt) or (isinstance(frame, Interrupt) and frame.text is not None):
            wanted = frame.models if frame.models is not None else list(defaults)
        elif isinstance(frame, Regenerate):
            wanted = [frame.model]
        else:
            return
        for model_id in wanted:
            if not self.allows_model(model_id):
                raise PeerError("forbidden", f"your token does not allow model {model_id[:128]!r}")


_EXPIRED: Final = "the token has expired: get a new one"
#: Why a token is refused, by PyJWT's error, most specific first.
_REFUSALS: Final = (
    (jwt.ExpiredSignatureError, _EXPIRED),
    (jwt.InvalidSignatureError, "the token's signature is not valid"),
    (jwt.ImmatureSignatureError, "the token is not valid yet (nbf, iat)"),
    # A token minted for some other audience is not meant for rtserver.
    (jwt.InvalidAudienceError, "the token names an audience (aud); leave it out"),
    (jwt.InvalidTokenError, "the token is not a valid HS256 JWT"),
)

#: Open mode, and every participant of it: anything the server offers.
OPEN_GRANT: Final = Grant()
#: Tokens whose signature was checked, kept for their next use (a reconnect, a page request).
VERIFIED_TOKENS: Final = 4096


class RoomTokens:
    """Verifies room tokens (and issues them, for ``rtserver token`` and tests)."""

    def __init__(
        self,
        *,
        secret: str,
        clock: Callable[[], float] = time.time,
        remembered: int = VERIFIED_TOKENS,
    ) -> None:
        self._secret = secret
        self._clock = clock
        # Checking a signature is most of a refusal's cost, and a client that reconnects
        # (or floods) brings the same token each time. A token is its own proof: the same
        # string verified once verifies again, so only its expiry is looked at anew. (These
        # tokens cannot be revoked before they expire, so nothing is missed by not looking.)
        self._verified: OrderedDict[str, Claims] = OrderedDict()
        self._remembered = remembered

    @property
    def secret(self) -> str:
        return self._secret

    def verify(self, token: str | None) -> Claims:
        """The token's claims; ``unauthorized`` when it is missing, malformed, forged or old."""
        if not token:
            raise PeerError(
                "unauthorized",
                "this server needs a room token (hello.token, ?token= or Authorization: Bearer)",
            )
        claims = self._verified.get(token)
        if claims is None:
            claims = self._checked(token)
        elif claims.exp <= self._clock():
            del self._verified[token]
            raise PeerError("unauthorized", _EXPIRED)
        self._verified[token] = claims
        self._verified.move_to_end(token)
        if len(self._verified) > self._remembered:
            self._verified.popitem(last=False)
        return claims

    def _checked(self, token: str) -> Claims:
        payload = self._decode(token)
        try:
            return msgspec.convert(payload, Claims)
        except msgspec.ValidationError as exc:
            raise PeerError(
                "unauthorized", f"the token's claims are invalid: {exc}"[:300]
            ) from None

    def _decode(self, token: str) -> dict[str, object]:
        try:
            payload: dict[str, object] = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.MissingRequiredClaimError as exc:
            raise PeerError("unauthorized", f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            why = next(words for kind, words in _REFUSALS if isinstance(exc, kind))
            raise PeerError("unauthorized", why) from None
        return payload

    def issue(
        self,
        *,
        sub: str,
        rooms: Iterable[str],
        ttl_s: float,
        role: TokenRole = "member",
        name: str | None = None,
        models: Iterable[str] | None = None,
    ) -> str:
        """A signed token for ``sub`` that expires ``ttl_s`` seconds from now."""
        claims: dict[str, object] = {
            "sub": sub,
            "rooms": list(rooms),
            "role": role,
            "exp": int(self._clock() + ttl_s),
        }
        if name is not None:
            claims["name"] = name
        if models is not None:
            claims["models"] = list(models)
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)


def grant_of(claims: Claims) -> Grant:
    models = frozenset(claims.models) if claims.models is not None else None
    return Grant(role=claims.role, models=models)


def secret_from(env: Mapping[str, str], variable: str) -> str | None:
    """The token secret in ``env[variable]``; None when unset (open mode)."""
    secret = env.get(variable, "")
    if not secret:
        return None
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{variable} is {len(secret)} characters; use at least {MIN_SECRET_CHARS}, for example"
            " the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return secret
