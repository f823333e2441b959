"""PostgreSQL ``text`` cannot hold U+0000; rtserver's texts may. A reversible escape bridges them.

A prompt, a name or a model's reply may contain NUL characters, and SQLite keeps them. Refusing
them would lose a reply a model already sent, so the PostgreSQL store writes every client- or
model-supplied string through :func:`escape` and reads it back through :func:`unescape`:
U+0000 is written as ``ESC "0"`` and ``ESC`` itself as ``ESC ESC``, where ``ESC`` is U+FDD0, a
noncharacter that Unicode sets aside for a program's internal use. Text without either
character (nearly all of it) is stored as it is, so the database stays readable with psql.
"""

from __future__ import annotations

import re
from typing import Final

ESC: Final = "\ufdd0"
_ESCAPED: Final = re.compile(ESC + "(.)", re.DOTALL)
_DECODED: Final = {ESC: ESC, "0": "\x00"}


def escape(text: str) -> str:
    """``text`` in a form PostgreSQL accepts, from which :func:`unescape` restores it exactly."""
    if "\x00" not in text and ESC not in text:
        return text
    return text.replace(ESC, ESC + ESC).replace("\x00", ESC + "0")


def escape_or_none(text: str | None) -> str | None:
    return None if text is None else escape(text)


def unescape(stored: str) -> str:
    """The text that :func:`escape` stored as ``stored``."""
    if ESC not in stored:
        return stored
    # A lone ESC at the end, or before anything else, was not written by escape(): kept as is.
    return _ESCAPED.sub(lambda m: _DECODED.get(m.group(1), m.group(0)), stored)


def unescape_or_none(stored: str | None) -> str | None:
    return None if stored is None else unescape(stored)
