"""Usage counted from what a stream sent, when its provider reported none."""

from __future__ import annotations

from rtserver.protocol.frames import Usage
from rtserver.turns.usage_estimate import StreamedOutput


def test_counted_chunks_are_taken_as_tokens_whatever_their_length() -> None:
    streamed = StreamedOutput()
    for word in (" lighthouse", " breakwater", " x"):
        streamed.add(word, 1)

    assert streamed.usage(["hello there"]) == Usage(input_tokens=3, output_tokens=3, estimated=True)


def test_text_without_a_count_falls_back_to_four_characters_a_token() -> None:
    streamed = StreamedOutput()
    streamed.add("x" * 40, None)
    streamed.add("counted", 2)

    usage = streamed.usage(["a" * 8, "b" * 12])

    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (5, 12, True)


def test_an_estimate_is_never_below_one_token() -> None:
    streamed = StreamedOutput()
    streamed.add("", None)

    assert streamed.usage([]) == Usage(input_tokens=1, output_tokens=1, estimated=True)
