"""Which bus a server runs on: the in-process one, or Redis when ``--redis`` names one."""

from __future__ import annotations

from urllib.parse import urlsplit

from redis.exceptions import RedisError

from rtserver.bus.base import Bus
from rtserver.bus.local import LocalBus
from rtserver.config import Settings
from rtserver.errors import RtError


class BusError(RtError):
    """The configured Redis cannot be used; the message names it (without its password)."""


def describe_redis(url: str) -> str:
    """``url`` as it may be printed and logged: without a password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.split("://", 1)[0] + "://(unreadable URL)"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


async def open_bus(settings: Settings) -> Bus:
    """The bus ``settings`` ask for; BusError, in one line, when Redis does not answer."""
    if settings.redis_url is None:
        return LocalBus()
    from rtserver.bus.redis import RedisBus

    try:
        return await RedisBus.open(
            settings.redis_url,
            prefix=settings.bus_prefix,
            window=settings.limits.event_log_events,
        )
    except (RedisError, OSError) as exc:
        raise BusError(
            f"cannot use the bus at {describe_redis(settings.redis_url)}: "
            f"{exc.__class__.__name__}: {exc}"
        ) from None
