"""What one ``stockstream`` command line costs before it does anything: CPU per start, this checkout vs a git ref, same run.

    .venv/bin/python -m bench.bench_cli_startup [--ref 07ef628] [--rounds 7] [--out FILE]

Every command a person types, a script runs or a test spawns starts a Python process that imports the
CLI. Each side runs the same command lines (help pages and ``--version``: they do no work of their
own, so the figure is the start-up) as ``python -c "from stockstream.cli import main; main()" …``
in a subprocess whose ``PYTHONPATH`` and working folder are that side's code (``--ref`` in a git
worktree), output to a pipe (plain help, as scripts and tests see it). Sides alternate, ``--rounds``
times; each command's figure is the minimum over the rounds of the child's CPU time (user + system,
from ``wait4``): the machine is shared, the minimum is the least disturbed start. Writes
``bench/results/<date>-cli-startup.json`` (or ``--out``): the machine, the figures, every round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.common import REPO, BenchOutput, Figure, Measure, git, machine

RESULTS = REPO / "bench" / "results"
BASELINE = "07ef628"  # the release before lazy command imports
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--help",), ("--version",), ("query", "--help"), ("stack", "--help"), ("indicators", "--help"),
    ("notify", "--help"), ("process", "--help"), ("tail", "--help"),
)
ENTRY = "from stockstream.cli import main; main()"


def cpu_of_start(code: Path, command: tuple[str, ...]) -> float:
    """CPU seconds (user + system) of one ``stockstream <command>`` run from the code in ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    env.pop("COLUMNS", None)
    child = subprocess.Popen([sys.executable, "-c", ENTRY, *command], cwd=code, env=env,  # noqa: S603
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None  # noqa: S101 - stderr=PIPE
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} in {code} exited {child.returncode}: {errors.decode()[-500:]}")
    return usage.ru_utime + usage.ru_stime


def measure(ref: str, rounds: int) -> dict[str, object]:
    """Every round of every command on both sides (this checkout and ``ref``), alternating."""
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    tree = work / "baseline"
    commit = git("rev-parse", ref)
    git("worktree", "add", "--detach", str(tree), commit)
    label = ref if commit.startswith(ref) else f"{ref} ({commit[:7]})"
    sides = {"this checkout": REPO, label: tree}
    runs: list[dict[str, object]] = []
    try:
        for round_number in range(rounds):
            order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
            for side in order:
                for command in COMMANDS:
                    runs.append({"side": side, "round": round_number, "command": " ".join(command),
                                 "cpu_ms": round(cpu_of_start(sides[side], command) * 1000, 1),
                                 "load_average_1m": round(os.getloadavg()[0], 2)})
            print(f"round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(work, ignore_errors=True)
    return {"ref": ref, "commit": commit, "sides": list(sides), "runs": runs}


def figures(found: dict[str, object]) -> list[Figure]:
    """Per command: this checkout's least CPU per start beside the ref's, same run."""
    ours, theirs = found["sides"]  # type: ignore[misc]
    runs: list[dict] = found["runs"]  # type: ignore[assignment]
    out = []
    for command in dict.fromkeys(run["command"] for run in runs):
        best = {side: min(run["cpu_ms"] for run in runs if run["side"] == side and run["command"] == command)
                for side in (ours, theirs)}
        out.append(Figure(name=f"stockstream {command}", unit="ms CPU per start", better="lower",
                          ours=Measure(label=ours, value=best[ours]), baseline=Measure(label=theirs, value=best[theirs]),
                          how=f"least of {max(run['round'] for run in runs) + 1} alternating rounds"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", default=BASELINE, help="the baseline's git ref (before lazy command imports)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, help="default bench/results/<date>-cli-startup.json")
    args = parser.parse_args()
    where = machine()
    found = measure(args.ref, args.rounds)
    output = BenchOutput(params={"ref": args.ref, "commit": found["commit"], "rounds": args.rounds},
                         figures=figures(found), details={"runs": found["runs"]})
    out = args.out or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-cli-startup.json"
    document = {"machine": where.model_dump(mode="json"), "head": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
                "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
                **output.model_dump(mode="json")}
    out.write_text(json.dumps(document, indent=1) + "\n")
    for figure in output.figures:
        print(f"{figure.name}: {figure.ours.value:.0f} ms vs {figure.baseline.value:.0f} ms ({figure.baseline.label})")


if __name__ == "__main__":
    main()
