"""The access rules without sockets: tokens, grants, origins, addresses, budgets, open mode."""

from __future__ import annotations

import time
from unittest import mock

import jwt
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from rtserver.auth.access import Access, check_open_mode, is_loopback_host
from rtserver.auth.limits import DAY_S, ClientLimits, DailyBudget
from rtserver.auth.origins import OriginPolicy
from rtserver.auth.tokens import Claims, Grant, RoomTokens, secret_from
from rtserver.config import ConfigFile, Limits, ServerSection, build_settings
from rtserver.errors import ConfigError, PeerError
from rtserver.protocol.frames import Cancel, Interrupt, Ping, Prompt, Regenerate, Typing, Withdraw

SECRET = "k" * 64
TOKENS = RoomTokens(secret=SECRET)


def _code(error: pytest.ExceptionInfo[PeerError]) -> str:
    return error.value.code


# --- tokens ----------------------------------------------------------------------------------


def test_an_issued_token_verifies_to_its_claims() -> None:
    issued = TOKENS.issue(
        sub="u1", rooms=["a", "b*"], ttl_s=60, role="viewer", name="Ann", models=["m"]
    )
    claims = TOKENS.verify(issued)
    assert (claims.sub, claims.rooms, claims.role, claims.name, claims.models) == (
        "u1",
        ["a", "b*"],
        "viewer",
        "Ann",
        ["m"],
    )
    assert claims.exp == pytest.approx(time.time() + 60, abs=2)


def test_role_defaults_to_member_and_unknown_claims_are_ignored() -> None:
    raw = jwt.encode({"sub": "u", "exp": int(time.time()) + 60, "extra": 1}, SECRET, "HS256")
    claims = TOKENS.verify(raw)
    assert (claims.role, claims.rooms, claims.models) == ("member", [], None)


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"sub": "u"}, "'exp'"),
        ({"exp": 9999999999}, "'sub'"),
        ({"sub": "u", "exp": 9999999999, "role": "admin"}, "claims are invalid"),
        ({"sub": "u", "exp": 9999999999, "rooms": "lobby"}, "claims are invalid"),
        ({"sub": 5, "exp": 9999999999}, "not a valid"),
        ({"sub": "u", "exp": 9999999999, "aud": "billing"}, "audience"),
        ({"sub": "u", "exp": 9999999999, "nbf": 9999999990}, "not valid yet"),
    ],
)
def test_tokens_with_bad_claims_are_unauthorized(payload: dict[str, object], words: str) -> None:
    with pytest.raises(PeerError) as refused:
        TOKENS.verify(jwt.encode(payload, SECRET, "HS256"))
    assert _code(refused) == "unauthorized"
    assert words in refused.value.message


def test_only_hs256_is_accepted() -> None:
    hs512 = jwt.encode({"sub": "u", "exp": 9999999999}, SECRET, "HS512")
    with pytest.raises(PeerError) as refused:
        TOKENS.verify(hs512)
    assert _code(refused) == "unauthorized"


@pytest.mark.parametrize(
    ("rooms", "room", "allowed"),
    [
        (["*"], "x", True),
        (["a"], "a", True),
        (["a"], "ab", False),
        (["a*"], "ab", True),
        (["a*"], "a", True),
        (["a*"], "ba", False),
        ([], "a", False),
        (["x", "y*"], "yz", True),
    ],
)
def test_room_patterns(rooms: list[str], room: str, allowed: bool) -> None:
    assert Claims(sub="s", rooms=rooms, exp=0).allows_room(room) is allowed


def test_a_viewer_grant_refuses_what_steers_generations() -> None:
    viewer = Grant(role="viewer")
    for frame in (
        Prompt(id="p", text="t"),
        Interrupt(),
        Interrupt(text="x"),
        Cancel(),
        Regenerate(model="m", reply_to="u"),
        Withdraw(message="u"),
    ):
        with pytest.raises(PeerError) as refused:
            viewer.check(frame, defaults=["m"])
        assert _code(refused) == "forbidden"
    viewer.check(Typing(active=True), defaults=["m"])
    viewer.check(Ping(), defaults=["m"])


def test_a_grant_with_models_refuses_others_and_the_defaults_outside_it() -> None:
    grant = Grant(models=frozenset({"a"}))
    grant.check(Prompt(id="p", text="t", models=["a"]), defaults=["b"])
    grant.check(Prompt(id="p", text="t"), defaults=["a"])
    grant.check(Interrupt(), defaults=["b"])  # a bare interrupt asks no model
    for frame in (
        Prompt(id="p", text="t", models=["a", "b"]),
        Prompt(id="p", text="t"),
        Interrupt(text="t"),
        Regenerate(model="b", reply_to="u"),
    ):
        with pytest.raises(PeerError) as refused:
            grant.check(frame, defaults=["b"])
        assert _code(refused) == "forbidden"


def test_a_secret_must_be_long_enough() -> None:
    assert secret_from({}, "S") is None
    assert secret_from({"S": ""}, "S") is None
    assert secret_from({"S": SECRET}, "S") == SECRET
    with pytest.raises(ConfigError, match="at least 32"):
        secret_from({"S": "short"}, "S")


# --- origins ---------------------------------------------------------------------------------


def test_origins_the_servers_own_and_configured_ones_pass() -> None:
    policy = OriginPolicy(
        allowed=["https://app.example.com", "http://localhost:*", "http://[::1]:*"]
    )
    host = "chat.example.com"
    assert policy.allows("https://chat.example.com", host=host)
    assert policy.allows("HTTPS://App.Example.com", host=host)
    assert policy.allows("http://localhost:5173", host=host)
    assert policy.allows("http://[::1]:8080", host=host)
    for origin in (
        "null",
        "https://evil.example",
        "https://app.example.com:444",
        "http://app.example.com",
        "https://app.example.com/path",
        "http://localhost.evil.example:80",
        "file://",
        "",
    ):
        assert not policy.allows(origin, host=host), origin


def test_config_refuses_bad_origins_and_proxies() -> None:
    for bad in ({"allowed_origins": ["app.example.com"]}, {"allowed_origins": ["https://a/b"]}):
        with pytest.raises(msgspec.ValidationError, match="allowed_origins"):
            msgspec.convert(bad, ServerSection)
    with pytest.raises(msgspec.ValidationError, match="trusted_proxies"):
        msgspec.convert({"trusted_proxies": ["nginx"]}, ServerSection)
    section = msgspec.convert({"trusted_proxies": ["10.0.0.0/8", "fd00::1"]}, ServerSection)
    assert section.trusted_proxies == ["10.0.0.0/8", "fd00::1"]


# --- client addresses ------------------------------------------------------------------------


def _request(peer: str, forwarded: str | None = None) -> web.Request:
    """A request as it arrives from ``peer`` (the socket's far end)."""
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 1234) if name == "peername" else default
    )
    return make_mocked_request("GET", "/", headers=headers, transport=transport)


@pytest.mark.parametrize(
    ("peer", "forwarded", "address"),
    [
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "203.0.113.5", "203.0.113.5"),
        ("127.0.0.1", "198.51.100.1, 203.0.113.5", "203.0.113.5"),
        ("127.0.0.1", "203.0.113.5, 10.0.0.2", "203.0.113.5"),  # through a second proxy
        ("127.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # all trusted: the leftmost
        ("127.0.0.1", "bogus", "127.0.0.1"),
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # an untrusted peer is the client
        ("::ffff:127.0.0.1", "203.0.113.5", "203.0.113.5"),
    ],
)
def test_client_addresses_trust_forwarded_for_from_trusted_proxies_only(
    peer: str, forwarded: str | None, address: str
) -> None:
    access = Access(tokens=None, trusted_proxies=["127.0.0.0/8", "10.0.0.0/8"])
    assert access.client_address(_request(peer, forwarded)) == address


def test_open_mode_keys_direct_loopback_connections_apart() -> None:
    access = Access(tokens=None, trusted_proxies=["127.0.0.0/8"])
    direct = _request("127.0.0.1")
    one = access.identify(direct, None, room="r", connection=True)
    two = access.identify(direct, None, room="r", connection=True)
    assert one.key.startswith("conn:")
    assert one.key != two.key
    http = access.identify(direct, None, room="r", connection=False)
    assert http.key == "addr:127.0.0.1"
    proxied = access.identify(_request("127.0.0.1", "203.0.113.5"), None, room="r", connection=True)
    assert proxied.key == "addr:203.0.113.5"


# --- limits ----------------------------------------------------------------------------------


def test_a_daily_budget_refuses_once_spent_and_renews_when_the_utc_day_rolls() -> None:
    now = [10 * DAY_S + 3600.0]
    budget = DailyBudget(per_day=100, clock=lambda: now[0])
    budget.check()
    budget.spend(60)
    budget.check()
    budget.spend(40)
    with pytest.raises(PeerError) as refused:
        budget.check()
    assert (refused.value.code, refused.value.retry_after) == ("rate_limited", DAY_S - 3600.0)
    now[0] = 11 * DAY_S
    budget.check()
    assert budget.spent == 0


def test_no_budget_never_refuses() -> None:
    budget = DailyBudget(per_day=0, clock=time.time)
    budget.spend(10**9)
    budget.check()


def test_connections_per_client_are_held_and_given_back() -> None:
    limits = ClientLimits(Limits(connections_per_client=2))
    with limits.connection("a"), limits.connection("a"):
        with pytest.raises(PeerError) as refused, limits.connection("a"):
            pass
        assert refused.value.retry_after is not None
        with limits.connection("b"):
            pass
    with limits.connection("a"), limits.connection("a"):
        pass


def test_the_quota_of_a_key_is_shared() -> None:
    limits = ClientLimits(Limits(prompts_per_minute=1))
    assert limits.quota("k").prompts.take() == 0
    assert limits.quota("k").prompts.take() > 0
    assert limits.quota("other").prompts.take() == 0


def test_a_connections_own_key_is_limited_like_a_new_client_and_kept_nowhere() -> None:
    limits = ClientLimits(Limits(prompts_per_minute=1, joins_per_minute=1))
    own = Access(tokens=None, trusted_proxies=[]).identify(
        _request("127.0.0.1"), None, room="r", connection=True
    )
    quota = limits.quota(own.key)
    assert quota.prompts.take() == 0
    assert quota.prompts.take() > 0, "its own bucket still limits it"
    # Nothing is kept under the key: no table grows by a connection that ends.
    assert limits.quota(own.key).prompts is not quota.prompts
    assert limits.budget(own.key) is not quota.budget
    limits.join(own.key)
    limits.join(own.key)
    limits.join("addr:203.0.113.5")
    with pytest.raises(PeerError):
        limits.join("addr:203.0.113.5")
    assert limits.quota("addr:203.0.113.5").prompts is limits.quota("addr:203.0.113.5").prompts


# --- open mode -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.2", "example.com", ""])
def test_other_hosts(host: str) -> None:
    assert not is_loopback_host(host)


def test_open_mode_off_loopback_needs_a_secret_or_saying_so() -> None:
    check_open_mode(host="127.0.0.1", secret=None, open_on_purpose=False)
    check_open_mode(host="0.0.0.0", secret=SECRET, open_on_purpose=False)
    check_open_mode(host="0.0.0.0", secret=None, open_on_purpose=True)
    with pytest.raises(ConfigError, match="RTSERVER_SECRET") as refused:
        check_open_mode(host="0.0.0.0", secret=None, open_on_purpose=False)
    assert "--open" in str(refused.value)


def test_access_keys_reach_the_settings_from_a_config_file() -> None:
    config = msgspec.toml.decode(
        b'[server]\nallowed_origins = ["https://a.example"]\ntrusted_proxies = ["10.0.0.1"]\n'
        b'[auth]\nsecret_env = "MY_SECRET"\n[limits]\ntokens_per_user_per_day = 5\n',
        type=ConfigFile,
    )
    settings = build_settings(config, env={})
    assert settings.allowed_origins == ("https://a.example",)
    assert settings.trusted_proxies == ("10.0.0.1",)
    assert settings.auth.secret_env == "MY_SECRET"
    assert settings.auth.open is False
    assert settings.limits.tokens_per_user_per_day == 5
    assert build_settings(config, env={}, open_mode=True).auth.open is True
