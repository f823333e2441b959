"""The mutation score of each module from ``mutmut results --all true`` (run by ``make mutate``).

A mutant counts as killed when a test failed (``killed``), the suite hung on it (``timeout``)
or the type check refused it (``caught by type check``). Every other checked mutant, including
one no test runs (``no tests``), counts against the score, and is shown by the kind of its
reason in ``tests/mutation_reasons.tsv`` (equivalent, log only, at import, or open when it
has none).
Mutants not yet run are left out.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

KILLED = {"killed", "timeout", "caught by type check"}
UNCHECKED = {"not checked", "skipped"}
REASONS = Path("tests/mutation_reasons.tsv")
#: The table's columns after the mutant count, in order.
COLUMNS = ("killed", "equivalent", "log", "import", "open")
_LINE = re.compile(r"^\s*(?P<name>\S+__mutmut_\d+): (?P<status>.+?)\s*$")


def module_of(mangled: str) -> str:
    """``rtserver.room.room.xǁRoomǁjoin`` -> ``rtserver/room/room.py``."""
    parts = mangled.split(".")
    path = [p for p in parts if not p.startswith("x")]
    return "/".join(path) + ".py"


def load_reasons() -> dict[str, tuple[str, str]]:
    """The kind and reason recorded for each surviving mutant looked at, by mutant name."""
    if not REASONS.exists():
        return {}
    with REASONS.open(newline="") as file:
        rows = csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {row[0]: (row[1], row[2]) for row in rows if len(row) >= 3}


def tally(lines: list[str], reasons: dict[str, tuple[str, str]]) -> dict[str, Counter[str]]:
    """Per module, how many mutants were killed and how many survive of each kind."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        match = _LINE.match(line)
        if not match or match["status"] in UNCHECKED:
            continue
        name = match["name"]
        if match["status"] in KILLED:
            kind = "killed"
        else:
            kind = reasons.get(name, ("open", ""))[0]
            kind = kind if kind in COLUMNS else "open"
        by_module[module_of(name.rpartition("__mutmut_")[0])][kind] += 1
    return by_module


def report(by_module: dict[str, Counter[str]]) -> str:
    rows = [
        "| module | mutants | killed | equivalent | log only | at import | open | score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    totals: Counter[str] = Counter()
    for module in sorted(by_module):
        totals.update(by_module[module])
        rows.append(_row(f"`{module}`", by_module[module]))
    rows.append(_row("**all**", totals))
    return "\n".join(rows)


def _row(module: str, counts: Counter[str]) -> str:
    checked = sum(counts[kind] for kind in COLUMNS)
    score = f"{100 * counts['killed'] / checked:.1f}%" if checked else "-"
    cells = " | ".join(str(counts[kind]) for kind in COLUMNS)
    return f"| {module} | {checked} | {cells} | {score} |"


def main() -> int:
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        capture_output=True,
        text=True,
        check=True,
    )
    print(report(tally(done.stdout.splitlines(), load_reasons())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
