"""Where rtserver's time goes: a py-spy sampling profile of one benchmark scenario.

    python -m benchmarks.profile                  # 500 participants at 40 tok/s
    python -m benchmarks.profile --scenario 1000x20 --top 25

The server runs as in `make bench`; py-spy samples it (busy samples only, no line numbers)
while the load generator runs, and the summary lists functions by the share of samples in
which they were running (self) and on the stack (inclusive).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks.bench import pick_cores, run_once
from benchmarks.scenarios import RTSERVER, SCENARIOS

SAMPLES_PER_S = 200


@contextmanager
def py_spy(pid: int, output: Path) -> Iterator[None]:
    """Sample ``pid`` into ``output`` (py-spy's raw, collapsed-stack format) while in the block."""
    # py-spy is a bench extra, installed beside this interpreter.
    command = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid)]
    command += ["--format", "raw", "--nolineno", "--rate", str(SAMPLES_PER_S)]
    command += ["--output", str(output)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        _, err = spy.communicate(timeout=30)
        if not output.exists():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")


def summarise(collapsed: str, *, top: int) -> str:
    """Self and inclusive shares of each function in py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no busy samples"
    lines = [f"{total} busy samples", "", "self %   function"]
    lines += [f"{100 * n / total:6.1f}   {name}" for name, n in own.most_common(top)]
    lines += ["", "incl %   function"]
    lines += [f"{100 * n / total:6.1f}   {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--scenario", default="500x40", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--top", type=int, default=20, help="functions listed (default 20)")
    parser.add_argument("--output", help="keep the collapsed stacks in this file")
    args = parser.parse_args(argv)
    scenario = next(s for s in SCENARIOS if s.name == args.scenario)
    with tempfile.TemporaryDirectory(prefix="rtprofile-") as tmp:
        output = Path(args.output or Path(tmp) / "rtserver.txt")
        result, _ = run_once(
            scenario, RTSERVER, cores=pick_cores(), attach=lambda pid: py_spy(pid, output)
        )
        if not result.ok:
            print(f"the run FAILED: {result.error}")
            return 1
        print(summarise(output.read_text(), top=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
