"""The access log, with the secrets that travel in URLs taken out.

An SSE client can only put its session id (``POST .../frames?session=``) and its token
(``GET .../events?token=``) in the URL, and whoever reads the log must not be able to act as
that participant. Their values are written as ``[redacted]``; everything else is logged as
aiohttp would.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote_plus

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

#: Query keys whose values are bearer secrets.
SECRET_QUERY_KEYS: Final = frozenset({"session", "token"})
REDACTED: Final = "[redacted]"


def redact_query(query_string: str) -> str:
    """``query_string`` with the value of every secret key replaced by ``[redacted]``."""
    parts = []
    for part in query_string.split("&"):
        key = part.partition("=")[0]
        if unquote_plus(key) in SECRET_QUERY_KEYS:
            part = f"{key}={REDACTED}"
        parts.append(part)
    return "&".join(parts)


class RedactingAccessLogger(AbstractAccessLogger):
    """One line per request: address, request line (secrets redacted), status, size, time."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        target = request.path
        if request.query_string:
            target += "?" + redact_query(request.query_string)
        version = request.version
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"',
            request.remote or "-",
            request.method,
            target,
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
            request.headers.get("User-Agent", "-"),
        )
