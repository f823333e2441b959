"""Write docs/reference/mutation-survivors.md from ``mutants/`` and the reasons kept by hand.

Every mutant that ``make mutate`` left alive gets a row: its change and why it lives. The
reasons live in ``tests/mutation_reasons.tsv`` (mutant name, kind, reason; tab-separated), so
that a new run keeps what was decided about an old survivor and shows a new one as not yet
looked at. Run from the repository root after ``make mutate``:
``python -m tests.mutation_survivors``.

``python -m tests.mutation_survivors --rerun`` first runs each survivor that has no reason yet
again against all of its tests, not the capped few of ``make mutate``'s first pass: a survivor
that one of them kills is then recorded as killed by mutmut itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

from tests.mutation_score import KILLED, UNCHECKED, load_reasons

PAGE = Path("docs/reference/mutation-survivors.md")

#: What each kind of reason means, in the order the page lists them.
KINDS = {
    "equivalent": "the change cannot be seen from outside",
    "log": "only log text or context, or the close of a connection whose peer has gone",
    "import": "runs only while its module is imported, before mutmut turns the mutant on in a"
    " test's process: a test named in the reason kills it when run with `MUTANT_UNDER_TEST` set",
    "open": "not decided, or not killed yet: a test may still kill it",
}

HEADER = """\
# Mutation survivors

The mutants of `make mutate`'s last run (docs/testing.md, "Mutation testing") that no test
killed, each with its change (the original line, then the mutant's) and why it survives.
Made by `python -m tests.mutation_survivors` from `mutants/` and the reasons kept in
`tests/mutation_reasons.tsv`. Names are mutmut's, without the `rtserver.` prefix: `mutmut show
rtserver.NAME` prints the whole change (`.` between a class and its method is mutmut's `ǁ`).

"""


def survivors() -> list[tuple[str, Path]]:
    """Every mutant checked and not killed, with the source file it mutates."""
    alive = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, exit_code in data.exit_code_by_key.items():
            status = status_by_exit_code[exit_code]
            if status not in KILLED and status not in UNCHECKED:
                alive.append((name, path))
    return sorted(alive)


def change_of(name: str, path: Path) -> str:
    """The diff's removed lines, then its added ones, as one table cell."""
    diff = get_diff_for_mutant(name, path=path).splitlines()[2:]
    removed = " | ".join(line[1:] for line in diff if line.startswith("-"))
    added = " | ".join(line[1:] for line in diff if line.startswith("+"))
    return f"`{cell(removed)}` → `{cell(added)}`"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def short(name: str) -> str:
    """``rtserver.room.room.xǁRoomǁjoin__mutmut_3`` -> ``room.room.x.Room.join #3``."""
    base, _, number = name.removeprefix("rtserver.").rpartition("__mutmut_")
    return f"{base.replace('ǁ', '.')} #{number}"


def page(rows: list[tuple[str, str, str, str]]) -> str:
    counts = Counter(kind for _, _, kind, _ in rows)
    lines = [HEADER.rstrip("\n"), ""]
    lines += [f"- **{kind}** ({counts[kind]}): {meaning}." for kind, meaning in KINDS.items()]
    lines += ["", "| mutant | change | kind | why it survives |", "|---|---|---|---|"]
    for name, change, kind, reason in sorted(
        rows, key=lambda row: (list(KINDS).index(row[2]), row[0])
    ):
        lines.append(f"| `{short(name)}` | {change} | {kind} | {cell(reason)} |")
    return "\n".join(lines) + "\n"


def rerun_unexplained(reasons: dict[str, tuple[str, str]]) -> None:
    """Run every survivor not found equivalent or log-only against all of its tests (no cap)."""
    names = [name for name, _ in survivors() if reasons.get(name, ("open", ""))[0] == "open"]
    if not names:  # mutmut run with no names would run every mutant
        return
    env = {key: value for key, value in os.environ.items() if key != "RTSERVER_MUTANT_TESTS"}
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", "8", *names]
    subprocess.run(command, env=env, check=True)


def main() -> int:
    reasons = load_reasons()
    if "--rerun" in sys.argv[1:]:
        rerun_unexplained(reasons)
    rows = []
    for name, path in survivors():
        kind, reason = reasons.get(name, ("open", "not looked at since the last run"))
        rows.append((name, change_of(name, path), kind if kind in KINDS else "open", reason))
    PAGE.write_text(page(rows))
    print(f"{len(rows)} survivors written to {PAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
