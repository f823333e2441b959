"""The benchmark's frame checks: a missing, duplicated or reordered frame fails the run."""

from __future__ import annotations

import pytest

from benchmarks.checks import (
    ConnectionLog,
    Expected,
    FrameCheckError,
    percentile,
    verify_run,
)

TOKENS = (" a", " b", " c")
EXPECTED = {"s1": Expected(text="".join(TOKENS), tokens=len(TOKENS))}


def _deliver(name: str, seqs: list[int], *, arrived: int = 1_000, head: int = 0) -> ConnectionLog:
    """A connection that got tokens numbered ``seqs`` (then stream_end), 1 ms apart."""
    log = ConnectionLog(name, next_seq=head + 1)
    for n, seq in enumerate(seqs):
        log.token(seq, "s1", TOKENS[(seq - head - 1) % 3], emitted_us=0, now_us=arrived + n * 1000)
    log.stream_end(head + len(TOKENS) + 1, "s1", len(TOKENS))
    return log


def test_a_whole_run_passes_with_its_figures() -> None:
    logs = [_deliver("p0", [1, 2, 3]), _deliver("p1", [1, 2, 3], arrived=1_500)]
    figures = verify_run(logs, EXPECTED, frame_per_token=True)
    assert figures.token_frames == 6
    assert figures.tokens == 6
    assert list(figures.skews_us) == [500, 500, 500]
    assert sorted(figures.latencies_us) == [1_000, 1_500, 2_000, 2_500, 3_000, 3_500]


def test_a_run_starts_at_the_seq_after_the_welcome_head() -> None:
    log = _deliver("p0", [11, 12, 13], head=10)
    assert verify_run([log], EXPECTED, frame_per_token=True).token_frames == 3


@pytest.mark.parametrize(
    ("seqs", "what"),
    [
        ([1, 3], r"expected seq 2, got 3 \(missing frame\)"),
        ([1, 3, 2], r"expected seq 2, got 3 \(missing frame\)"),
        ([2, 1], r"expected seq 1, got 2 \(missing frame\)"),
        ([1, 2, 2], r"expected seq 3, got 2 \(duplicate or reordered frame\)"),
        ([1, 1], r"expected seq 2, got 1 \(duplicate or reordered frame\)"),
    ],
)
def test_a_missing_reordered_or_duplicate_frame_is_refused_as_it_arrives(
    seqs: list[int], what: str
) -> None:
    with pytest.raises(FrameCheckError, match=what):
        _deliver("p7", seqs)


def test_a_frame_before_the_first_expected_seq_is_refused() -> None:
    log = ConnectionLog("p0", next_seq=5)
    with pytest.raises(FrameCheckError, match="duplicate or reordered"):
        log.room_event(4)


def test_a_token_after_its_stream_end_is_refused() -> None:
    log = _deliver("p0", [1, 2, 3])
    with pytest.raises(FrameCheckError, match="after its stream_end"):
        log.token(5, "s1", " d", None, 0)


def test_a_second_stream_end_is_refused() -> None:
    log = _deliver("p0", [1, 2, 3])
    with pytest.raises(FrameCheckError, match="second stream_end"):
        log.stream_end(5, "s1", 3)


def test_a_stream_that_did_not_end_fails_the_run() -> None:
    log = ConnectionLog("p3", next_seq=1)
    log.token(1, "s1", " a", None, 0)
    with pytest.raises(FrameCheckError, match="p3: stream s1 did not end"):
        verify_run([log], EXPECTED, frame_per_token=True)


def test_wrong_text_with_the_right_seqs_fails_the_run() -> None:
    log = ConnectionLog("p0", next_seq=1)
    for seq, text in enumerate((" a", " x", " c"), start=1):
        log.token(seq, "s1", text, None, 0)
    log.stream_end(4, "s1", 3)
    with pytest.raises(FrameCheckError, match="text of stream s1 differs"):
        verify_run([log], EXPECTED, frame_per_token=True)


def test_a_token_count_other_than_the_sources_fails_the_run() -> None:
    log = ConnectionLog("p0", next_seq=1)
    for seq, text in enumerate(TOKENS, start=1):
        log.token(seq, "s1", text, None, 0)
    log.stream_end(4, "s1", 2)
    with pytest.raises(FrameCheckError, match="ended with 2 tokens, the source sent 3"):
        verify_run([log], EXPECTED, frame_per_token=True)


def _coalesced(name: str) -> ConnectionLog:
    log = ConnectionLog(name, next_seq=1)
    log.token(1, "s1", " a b", None, 0)
    log.token(2, "s1", " c", None, 0)
    log.stream_end(3, "s1", 3)
    return log


def test_several_tokens_in_one_frame_pass_only_when_the_server_coalesces() -> None:
    assert verify_run([_coalesced("p0")], EXPECTED, frame_per_token=False).tokens == 3
    with pytest.raises(FrameCheckError, match="came in 2 frames for 3 tokens"):
        verify_run([_coalesced("p0")], EXPECTED, frame_per_token=True)


def test_connections_that_got_different_frames_fail_the_run() -> None:
    logs = [_deliver("p0", [1, 2, 3]), _coalesced("p1")]
    with pytest.raises(FrameCheckError, match="p1 got 2 token frames, p0 got 3"):
        verify_run(logs, EXPECTED, frame_per_token=False)


def test_tokens_of_a_stream_the_source_never_sent_fail_the_run() -> None:
    log = _deliver("p0", [1, 2, 3])
    log.token(5, "s9", " z", None, 0)
    with pytest.raises(FrameCheckError, match="unexpected streams"):
        verify_run([log], EXPECTED, frame_per_token=True)


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([7], 0.99) == 7
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
