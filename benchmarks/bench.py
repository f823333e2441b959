"""`make bench`: rtserver beside python-socketio and a bare aiohttp loop, in one run.

    python -m benchmarks.bench                   # every scenario, 3 repetitions
    python -m benchmarks.bench --quick           # the quick set
    python -m benchmarks.bench --scenario 500x40 --reps 1 --json out.json

Each run starts a fresh server process pinned to one core and a load generator pinned to the
other (:mod:`benchmarks.loadgen`); repetitions are interleaved (every server once, then again),
and the figures are medians. A run whose frames do not check out, or whose server does not start,
join or finish in time, is a failure: it is printed as such, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import msgspec

from benchmarks.loadgen import Result, Spec
from benchmarks.report import Outcome, print_scenario, write_json
from benchmarks.scenarios import SCENARIOS, UNPACED_TOKENS_PER_S, Scenario, Server
from rtserver.config import Limits

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
#: Limits set when the server has them: the bench room is one big room from one address.
_WIDE_OPEN = {"participants_per_room": 100_000, "connections_per_client": 100_000}


def rtserver_config(scenario: Scenario, server: Server) -> tuple[str, set[str]]:
    """The TOML for one rtserver run, and notes on settings this server does not have."""
    known = set(Limits.__struct_fields__)
    limits: dict[str, float] = {"prompts_per_minute": 6000}
    limits.update({k: v for k, v in _WIDE_OPEN.items() if k in known})
    notes: set[str] = set()
    if server.token_flush_ms is not None:
        if "token_flush_ms" in known:
            limits["token_flush_ms"] = server.token_flush_ms
        elif server.token_flush_ms:
            notes.add("token_flush_ms is not a setting of this server: ran one frame per token")
    rate = scenario.rate or UNPACED_TOKENS_PER_S
    lines = ["[server]", "demo_models = false", "env_models = false", "", "[limits]"]
    lines += [f"{k} = {v!r}" for k, v in limits.items()]
    lines += ["", "[[models]]", 'id = "bench"', 'provider = "demo"', f"tokens_per_s = {rate!r}"]
    lines += ["first_token_s = 0.0", "stamp = true", "default = true"]
    return "\n".join(lines) + "\n", notes


class ServerProcess:
    """A benchmark server in its own process, stopped (then killed) on exit."""

    def __init__(self, server: Server, scenario: Scenario, *, core: int, workdir: Path) -> None:
        self.notes: set[str] = set()
        command = [sys.executable, "-m", "benchmarks.servers", server.kind, "--core", str(core)]
        if server.kind == "rtserver":
            text, self.notes = rtserver_config(scenario, server)
            config = workdir / "rtserver.toml"
            config.write_text(text)
            command += ["--config", str(config), "--db", str(workdir / "rtserver.db")]
        self._stderr = (workdir / "server.err").open("w+")
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        self.port = self._wait_ready()

    def _wait_ready(self) -> int:
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([stdout], [], [], left)
            line = stdout.readline() if readable else ""
            if line.startswith("READY "):
                return int(line.split()[1])
            if not line and self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the server did not start in {START_TIMEOUT_S:.0f} s: {self.stderr()}")

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].strip() or "(no output)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()


def run_once(
    scenario: Scenario,
    server: Server,
    *,
    cores: tuple[int, int],
    attach: Callable[[int], AbstractContextManager[object]] | None = None,
) -> tuple[Result, set[str]]:
    """One fresh server, one load generator, one checked result.

    ``attach`` (given the server's pid) wraps the load generator's run, e.g. in a profiler.
    """
    with tempfile.TemporaryDirectory(prefix="rtbench-") as tmp:
        try:
            process = ServerProcess(server, scenario, core=cores[0], workdir=Path(tmp))
        except RuntimeError as exc:
            return Result(ok=False, error=str(exc)), set()
        try:
            spec = Spec(
                kind=server.kind,
                port=process.port,
                server_pid=process.process.pid,
                mode=scenario.mode,
                participants=scenario.participants,
                turns=scenario.turns,
                tokens=scenario.tokens,
                rate=scenario.rate,
                coalesced=bool(server.token_flush_ms) and not process.notes,
                join_timeout_s=scenario.join_timeout_s(),
                run_timeout_s=scenario.run_timeout_s(),
                core=cores[1],
            )
            with attach(process.process.pid) if attach else nullcontext():
                return _generate(spec), process.notes
        finally:
            process.stop()


def _generate(spec: Spec) -> Result:
    limit = spec.join_timeout_s + spec.run_timeout_s + 120
    command = [sys.executable, "-m", "benchmarks.loadgen", msgspec.json.encode(spec).decode()]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return Result(ok=False, error=f"the load generator did not finish in {limit:.0f} s")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return Result(ok=False, error=f"the load generator failed: {done.stderr[-2000:]}")
    return msgspec.json.decode(lines[-1], type=Result)


def run_scenario(
    scenario: Scenario,
    *,
    reps: int,
    flush_ms: float,
    cores: tuple[int, int],
    only: Sequence[str] | None = None,
) -> dict[str, Outcome]:
    """Every server of the scenario, ``reps`` times, interleaved; a failing server stops early."""
    servers = tuple(s for s in scenario.servers(flush_ms) if not only or s.label.split()[0] in only)
    outcomes = {s.label: Outcome() for s in servers}
    for rep in range(reps):
        # Rotate the order so that no server always runs right after the same one.
        for server in servers[rep % len(servers) :] + servers[: rep % len(servers)]:
            outcome = outcomes[server.label]
            if outcome.failure:
                continue
            result, notes = run_once(scenario, server, cores=cores)
            outcome.results.append(result)
            outcome.notes |= notes
            status = "ok" if result.ok else f"FAILED: {result.error}"
            print(f"  {scenario.name} rep {rep + 1} {server.label}: {status}", flush=True)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # A stop from outside still runs the finally blocks that stop each run's server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    chosen = _choose(args)
    cores = pick_cores()
    print(f"server on core {cores[0]}, load generator on core {cores[1]}, {args.reps} reps")
    os.sched_setaffinity(0, {cores[1]})
    every: dict[str, dict[str, Outcome]] = {}
    for scenario in chosen:
        print(f"\n== {scenario.name}", flush=True)
        every[scenario.name] = run_scenario(
            scenario, reps=args.reps, flush_ms=args.token_flush_ms, cores=cores, only=args.server
        )
        print_scenario(scenario, every[scenario.name])
    if args.json:
        write_json(Path(args.json), every)
    failed = [
        f"{name} / {label}" for name, o in every.items() for label, x in o.items() if x.failure
    ]
    if failed:
        print(f"\nFAILED runs: {', '.join(failed)}")
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    names = [s.name for s in SCENARIOS]
    parser.add_argument("--quick", action="store_true", help="only the quick set of scenarios")
    parser.add_argument("--scenario", action="append", choices=names, help="run this one")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument(
        "--token-flush-ms", type=float, default=20.0, help="rtserver's coalescing in 1000x200"
    )
    parser.add_argument(
        "--server", action="append", help="run only this server (bare, socketio, rtserver...)"
    )
    parser.add_argument("--json", help="also write every result to this file")
    return parser


def _choose(args: argparse.Namespace) -> list[Scenario]:
    if args.scenario:
        return [s for s in SCENARIOS if s.name in args.scenario]
    return [s for s in SCENARIOS if s.quick or not args.quick]


def pick_cores() -> tuple[int, int]:
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        print("only one core: server and load generator share it, figures will be worse")
        return available[0], available[0]
    return available[0], available[1]


if __name__ == "__main__":
    sys.exit(main())
