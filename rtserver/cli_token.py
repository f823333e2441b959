"""``rtserver token``: a room token for testing, or for a backend that shells out."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping

from rtserver.auth.tokens import RoomTokens, secret_from
from rtserver.errors import ConfigError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def token_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rtserver token``."""
    parser.add_argument(
        "--room",
        action="append",
        required=True,
        help="a room id the token allows, '*' for all, 'prefix*' for a prefix (repeatable)",
    )
    parser.add_argument("--role", choices=("member", "viewer"), default="member")
    parser.add_argument("--sub", default="cli", help="the subject: who the bearer is")
    parser.add_argument("--name", help="the display name the bearer gets")
    parser.add_argument("--models", help="comma-separated model ids the bearer may prompt")
    parser.add_argument("--ttl", default="1h", help="lifetime: 90s, 30m, 1h, 7d (default 1h)")


def issue_token(args: argparse.Namespace, secret_env: str, env: Mapping[str, str]) -> str:
    """Sign the token ``args`` describe with the secret the server reads."""
    secret = secret_from(env, secret_env)
    if secret is None:
        raise ConfigError(
            f"{secret_env} is not set: export the secret the server uses to sign room tokens"
        )
    models = None
    if args.models is not None:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
    return RoomTokens(secret=secret).issue(
        sub=args.sub,
        rooms=args.room,
        ttl_s=parse_duration(args.ttl),
        role=args.role,
        name=args.name,
        models=models,
    )


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``1h``, ``7d`` or plain seconds, as seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"--ttl {text!r}: give a positive duration such as 90s, 30m, 1h or 7d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]
