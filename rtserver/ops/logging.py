"""Structured logs: one JSON object a line, with room, participant and stream ids as fields.

Ids come from a record's ``extra`` or from the log context (:func:`bind`), a set of context
variables: a connection binds its room and participant once, a generation its stream, and
every line logged in that task (and the tasks it starts) carries them.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import Final, Literal

import msgspec

LogFormat = Literal["text", "json"]
#: The id fields a line may carry.
ID_FIELDS: Final = ("room", "participant", "stream")
#: Other fields a line carries when the call passes them in ``extra``.
EXTRA_FIELDS: Final = ("model", "reason", "code", "duration_ms", "resume")
_context: Final = {
    name: contextvars.ContextVar[str | None](name, default=None) for name in ID_FIELDS
}
_encode = msgspec.json.Encoder().encode


def bind(
    *, room: str | None = None, participant: str | None = None, stream: str | None = None
) -> None:
    """Set ids in the current log context (this task and those it starts from now on)."""
    for name, value in (("room", room), ("participant", participant), ("stream", stream)):
        if value is not None:
            _context[name].set(value)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", room?, participant?, stream?, ...}``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ID_FIELDS:
            value = getattr(record, name, None) or _context[name].get()
            if value is not None:
                line[name] = value
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encode(line).decode()


def configure(level: str, log_format: LogFormat) -> None:
    """Log to stderr at ``level``, as text lines or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
