"""Tables of medians and ratios to the bare loop, as `make bench` prints them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from benchmarks.loadgen import Result
from benchmarks.scenarios import Scenario


@dataclass
class Outcome:
    """The repetitions of one server in one scenario."""

    results: list[Result] = field(default_factory=list)
    notes: set[str] = field(default_factory=set)

    @property
    def failure(self) -> str | None:
        return next((r.error for r in self.results if not r.ok), None)

    def median(self, key: str) -> float | None:
        values = [r.figures[key] for r in self.results if r.ok and key in r.figures]
        return statistics.median(values) if values else None


_METRICS = {
    "stream": (
        ("CPU ms / 1000 token frames", "cpu_ms_per_1000_frames"),
        ("tokens delivered / CPU s", "tokens_per_cpu_s"),
        ("latency p50 ms", "latency_p50_ms"),
        ("latency p99 ms", "latency_p99_ms"),
        ("skew p50 ms", "skew_p50_ms"),
        ("skew p99 ms", "skew_p99_ms"),
        ("wall s", "wall_s"),
        ("load generator busy", "loadgen_busy"),
    ),
    "idle": (("KB per idle connection", "kb_per_connection"),),
    "first_token": (
        ("prompt to first token ms", "first_token_ms"),
        ("prompt to provider emit ms", "prompt_to_emit_ms"),
        ("latency p50 ms", "latency_p50_ms"),
    ),
}
BASELINE = "bare"


def print_scenario(scenario: Scenario, outcomes: dict[str, Outcome]) -> None:
    """One table: a row per metric, a column per server, then each server's ratio to bare."""
    labels = list(outcomes)
    others = [label for label in labels if label != BASELINE]
    header = ["", *labels, *(f"{label} / bare" for label in others)]
    rows = [header]
    for title, key in _METRICS[scenario.mode]:
        medians = {label: outcomes[label].median(key) for label in labels}
        base = medians.get(BASELINE)
        row = [title, *(_cell(medians[label], outcomes[label]) for label in labels)]
        row += [_ratio(medians[label], base) for label in others]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print(f"-- {scenario.name}: {_describe(scenario)}")
    for title, *cells in rows:
        figures = (cell.rjust(width) for cell, width in zip(cells, widths[1:], strict=True))
        print("  ".join([title.ljust(widths[0]), *figures]))
    for label, outcome in outcomes.items():
        if outcome.failure:
            print(f"   {label} FAILED: {outcome.failure}")
        for note in sorted(outcome.notes):
            print(f"   {label}: {note}")
    if scenario.mode == "first_token":
        added = _difference(outcomes, "first_token_ms")
        if added is not None:
            print(f"   rtserver adds {added:.2f} ms to the first token over the bare loop")


def _describe(scenario: Scenario) -> str:
    if scenario.mode == "idle":
        return f"{scenario.participants} idle connections"
    tokens = scenario.turns * scenario.tokens
    rate = f"{scenario.rate:g} tok/s" if scenario.rate else "as fast as possible"
    # A server that keeps pace takes about this long; a longer wall time means it fell behind.
    paced = f" ({tokens / scenario.rate:.1f} s paced)" if scenario.rate else ""
    return (
        f"{scenario.participants} participants, {scenario.turns} x {scenario.tokens} tokens "
        f"at {rate}{paced}"
    )


def _cell(value: float | None, outcome: Outcome) -> str:
    if value is None:
        return "FAIL" if outcome.failure else "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}"


def _difference(outcomes: dict[str, Outcome], key: str) -> float | None:
    rt = outcomes.get("rtserver")
    bare = outcomes.get(BASELINE)
    if rt is None or bare is None:
        return None
    a, b = rt.median(key), bare.median(key)
    return None if a is None or b is None else a - b


def write_json(path: Path, every: dict[str, dict[str, Outcome]]) -> None:
    """Every result of every run, for docs and comparisons."""
    data = {
        name: {
            label: {"results": o.results, "notes": sorted(o.notes)} for label, o in outcomes.items()
        }
        for name, outcomes in every.items()
    }
    path.write_bytes(msgspec.json.format(msgspec.json.encode(data)))
