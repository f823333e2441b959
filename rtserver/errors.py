"""The one exception root of rtserver and the errors a peer may be told about."""

from __future__ import annotations

from rtserver.protocol.frames import ErrorCode, ErrorFrame, ErrorInfo


class RtError(Exception):
    """Root of every exception rtserver raises on purpose."""


class PeerError(RtError):
    """Something a peer did or asked for went wrong; the message is safe to show it.

    It becomes an ``error`` frame (or an HTTP error) and the connection carries on.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        ref: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.ref = ref
        self.retry_after = retry_after

    def to_frame(self) -> ErrorFrame:
        return ErrorFrame(
            code=self.code, message=self.message, ref=self.ref, retry_after=self.retry_after
        )

    def with_ref(self, ref: str | None) -> PeerError:
        """Return this error answering the client frame with id ``ref``."""
        return PeerError(self.code, self.message, ref=ref, retry_after=self.retry_after)


class ProviderError(RtError):
    """A model provider failed; raised only at the provider boundary, already mapped.

    ``message`` is written by us, never copied from the vendor, so it is safe to show.
    """

    def __init__(self, code: ErrorCode, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.retry_after = retry_after

    def to_info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, retry_after=self.retry_after)


class ConfigError(RtError):
    """The configuration file or environment is not usable; the message says why."""


#: The HTTP status that answers each error code on the HTTP API.
HTTP_STATUS: dict[ErrorCode, int] = {
    "bad_frame": 400,
    "unknown_type": 400,
    "unknown_model": 400,
    "forbidden": 403,
    "unauthorized": 401,
    "not_found": 404,
    "too_large": 413,
    "rate_limited": 429,
    "busy": 503,
    "provider_error": 502,
    "internal": 500,
}


class StoreError(RtError):
    """The database cannot be used by this version of rtserver."""
