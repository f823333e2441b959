"""Vendor failures become :class:`ProviderError`: the parts both vendors share.

Each vendor module maps its SDK's exceptions here, once, at the provider boundary. Every message
is written by us: vendor text can quote the request, part of a key or internal details, so it is
logged for the operator (without keys) and never sent to a peer.

The URLs of the operator's ``base_url`` go to the log, never to a peer: a room's participants are
not the operator, and a URL can name internal hosts or carry a credential. A 404 tells the peer
what to check (the model name, the path of ``base_url``) and that the log names the URL tried.

| failure                                         | code             | retry_after |
|-------------------------------------------------|------------------|-------------|
| key rejected (401), access refused (403)        | provider_error   |             |
| not found (404): unknown model or wrong URL     | provider_error   |             |
| other rejected request                          | provider_error   |             |
| rate limit (429)                                | rate_limited     | from header |
| quota used up (429 ``insufficient_quota``)      | provider_error   |             |
| conversation too long for the model (400, 413)  | too_large        |             |
| overloaded (529, 503, ``overloaded_error``)     | busy             | from header |
| other 5xx, error event mid-stream               | provider_error   |             |
| timeout, connection refused, stream broke       | provider_error   |             |
| key variable not set                            | provider_error   |             |
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from rtserver.errors import ProviderError

log = logging.getLogger("rtserver.providers")

#: The longest wait we pass on; a vendor asking for more is treated as "later".
MAX_RETRY_AFTER_S = 3600.0


def retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return _clamp(float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return _clamp(float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _clamp(moment.timestamp() - (time.time() if now is None else now))


def _clamp(seconds: float) -> float | None:
    if seconds != seconds:  # NaN
        return None
    return round(min(max(seconds, 0.0), MAX_RETRY_AFTER_S), 3)


def key_rejected(key_env: str | None) -> ProviderError:
    where = f" (check {key_env})" if key_env else ""
    return ProviderError("provider_error", f"the provider rejected the API key{where}")


def access_refused() -> ProviderError:
    return ProviderError("provider_error", "the provider refused access to this model")


def not_found(model: str, *, hint: str | None = None) -> ProviderError:
    """A 404: the server has no such model, or ``base_url`` does not lead to the vendor's API.

    The two look alike from here (a compatible server may answer either with a bare 404), so the
    message names both, with the vendor's ``hint`` about the URL's path when there is one.
    """
    where = f" ({hint})" if hint else ""
    return ProviderError(
        "provider_error",
        f"the provider answered 404 for model {model!r}: it does not offer that model, or "
        f"base_url does not lead to its API{where}; the server log names the URL tried",
    )


def rate_limited(after: float | None) -> ProviderError:
    return ProviderError(
        "rate_limited", "the provider's rate limit was reached; try again later", retry_after=after
    )


def quota_exhausted() -> ProviderError:
    return ProviderError("provider_error", "the account's quota at the provider is used up")


def too_large() -> ProviderError:
    return ProviderError("too_large", "the conversation is too long for this model")


def overloaded(after: float | None) -> ProviderError:
    return ProviderError("busy", "the provider is overloaded; try again later", retry_after=after)


def server_failed() -> ProviderError:
    return ProviderError("provider_error", "the provider failed while answering")


def request_rejected() -> ProviderError:
    return ProviderError("provider_error", "the provider rejected the request")


def timed_out() -> ProviderError:
    return ProviderError("provider_error", "the provider did not answer in time")


def unreachable() -> ProviderError:
    return ProviderError("provider_error", "could not reach the provider")


def stream_broke() -> ProviderError:
    return ProviderError("provider_error", "the connection to the provider broke mid-stream")


def ended_early() -> ProviderError:
    return ProviderError(
        "provider_error", "the provider's stream ended before the reply was complete"
    )


def unreadable() -> ProviderError:
    return ProviderError("provider_error", "the provider sent a reply rtserver could not read")


def key_missing(key_env: str) -> ProviderError:
    return ProviderError("provider_error", f"{key_env} is not set")


def router_streamed(router_id: str) -> ProviderError:
    """A router asked to generate: a fault of the server, never of the prompt."""
    return ProviderError("internal", f"router {router_id} chooses a model; it generates nothing")


def from_status(
    status: int,
    *,
    headers: Mapping[str, str] | None,
    model: str,
    key_env: str | None,
    not_found_hint: str | None = None,
) -> ProviderError:
    """The mapping by HTTP status alone, for what the vendor body did not make clearer."""
    if status == 401:
        return key_rejected(key_env)
    if status == 403:
        return access_refused()
    if status == 404:
        return not_found(model, hint=not_found_hint)
    if status == 408:
        return timed_out()
    if status == 413:
        return too_large()
    if status == 429:
        return rate_limited(retry_after(headers))
    if status in (503, 529):
        return overloaded(retry_after(headers))
    if status >= 500:
        return server_failed()
    return request_rejected()


def looks_like_context_overflow(text: str | None) -> bool:
    """Whether a vendor's message says the prompt exceeds the context window.

    Only some servers say so with a code; the rest say it in words, so the words are matched
    (to choose our code, never to be shown).
    """
    if not text:
        return False
    lowered = text.lower()
    return any(
        phrase in lowered
        for phrase in (
            "context length",
            "context_length",
            "context window",
            "maximum context",
            "prompt is too long",
            "too many tokens",
            "exceed context limit",
        )
    )


def loggable_url(url: str) -> str:
    """``url`` without user info, query and fragment, where a credential could hide."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "(unreadable URL)"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def answered(method: str, url: str, status: int) -> str:
    """The log's words for an HTTP error: which request answered it."""
    return f"{method} {loggable_url(url)} answered {status}"


def log_failure(
    vendor: str,
    *,
    model_id: str,
    model: str,
    base_url: str,
    mapped: ProviderError,
    detail: str,
) -> None:
    """Tell the operator which configured model failed, where, and how.

    No vendor message text: it may quote keys. ``detail`` names the exception's kind and ids,
    and for an HTTP error the URL that answered.
    """
    log.warning(
        "model %r (%s %r at %s) failed: %s -> %s: %s",
        model_id,
        vendor,
        model,
        loggable_url(base_url),
        detail,
        mapped.code,
        mapped.message,
    )
