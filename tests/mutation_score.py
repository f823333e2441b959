"""The mutation score of each module from ``mutmut results --all true`` (run by ``make mutate``).

A mutant counts as killed when a test failed (``killed``), the suite hung on it (``timeout``)
or the type check refused it (``caught by type check``). Every other checked mutant, including
one no test runs (``no tests``), counts against the score. Mutants not yet run are left out.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict

KILLED = {"killed", "timeout", "caught by type check"}
UNCHECKED = {"not checked", "skipped"}
_LINE = re.compile(r"^\s*(?P<name>\S+?)__mutmut_\d+: (?P<status>.+?)\s*$")


def module_of(mangled: str) -> str:
    """``rtserver.room.room.xǁRoomǁjoin`` -> ``rtserver/room/room.py``."""
    parts = mangled.split(".")
    path = [p for p in parts if not p.startswith("x")]
    return "/".join(path) + ".py"


def tally(lines: list[str]) -> dict[str, Counter[str]]:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        match = _LINE.match(line)
        if match:
            by_module[module_of(match["name"])][match["status"]] += 1
    return by_module


def report(by_module: dict[str, Counter[str]]) -> str:
    rows = ["| module | mutants | killed | survived | score |", "|---|---:|---:|---:|---:|"]
    totals: Counter[str] = Counter()
    for module in sorted(by_module):
        counts = by_module[module]
        totals.update(counts)
        rows.append(_row(module, counts))
    rows.append(_row("**all**", totals))
    return "\n".join(rows)


def _row(module: str, counts: Counter[str]) -> str:
    checked = sum(n for status, n in counts.items() if status not in UNCHECKED)
    killed = sum(counts[status] for status in KILLED)
    score = f"{100 * killed / checked:.1f}%" if checked else "-"
    return f"| {module} | {checked} | {killed} | {checked - killed} | {score} |"


def main() -> int:
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        capture_output=True,
        text=True,
        check=True,
    )
    print(report(tally(done.stdout.splitlines())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
