"""Usage for a reply whose provider reported none: counted from what it streamed.

An OpenAI-compatible server streams one token per chunk, so its chunks are counted exactly
(llama.cpp's server never sends a usage chunk). Text whose token count the stream did not say
(a vendor that batches tokens, a reply cut short before the vendor's counts) falls back to about
four characters a token, which reads high for English prose: 133 tokens for a 108-token reply.
Either way the result is marked ``estimated``, and so is the rate derived from it.
"""

from __future__ import annotations

from collections.abc import Iterable

from rtserver.protocol.frames import Usage

#: The rough rule for text without a token count.
CHARS_PER_TOKEN = 4


class StreamedOutput:
    """What a stream has sent so far, in tokens where the provider said, else in characters."""

    __slots__ = ("_tokens", "_uncounted_chars")

    def __init__(self) -> None:
        self._tokens = 0
        self._uncounted_chars = 0

    def add(self, text: str, tokens: int | None) -> None:
        """Count one delta's ``text``: ``tokens`` of it, or its characters when unknown."""
        if tokens is None:
            self._uncounted_chars += len(text)
        else:
            self._tokens += tokens

    def usage(self, prompt: Iterable[str]) -> Usage:
        """The estimate, with the input from ``prompt``'s characters (no count was sent)."""
        prompt_chars = sum(len(text) for text in prompt)
        output = self._tokens + round(self._uncounted_chars / CHARS_PER_TOKEN)
        return Usage(
            input_tokens=max(1, round(prompt_chars / CHARS_PER_TOKEN)),
            output_tokens=max(1, output),
            estimated=True,
        )
