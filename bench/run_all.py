"""Every benchmark of the project, one report: ``make bench`` (full) or ``BENCH_QUICK=1 make bench`` (quick).

    .venv/bin/python -m bench.run_all [--quick] [--only indicators,ingest] [--out bench/results] [--docs FILE]
    .venv/bin/python -m bench.run_all --render bench/results/<date>.json   # the page again, no run

Runs each ``bench/bench_<name>.py`` in its own process through its ``run(quick)`` entry point
(a fresh interpreter per benchmark: no shared metric registries, caches or warm JITs), one after
the other so they do not compete for the two cores, then writes

- ``bench/results/<date>.json`` (``<date>-quick.json`` in quick mode): a :class:`bench.common.BenchReport`
  — the machine, and per benchmark its parameters, figures (each with its same-run baseline)
  and raw numbers;
- ``docs/benchmarks.md`` (:data:`PAGE`), after a run of every benchmark: the machine and one table, each figure
  beside its baseline, each followed by a marker naming its place in the JSON (``bench/figures.py`` checks them;
  so does ``make test``). A partial run (``--only``) leaves that page — the last full run's — alone, and writes
  its own page only where ``--docs`` says;
- after a full run of every benchmark, the figures of README.md and docs/*.md that quote the previous
  ``make bench`` run: :func:`bench.figures.update` rewrites them from this run and re-points their markers,
  then lists the figures it kept on an older file and any marker that no longer checks out
  (``--no-update`` leaves the docs other than this page alone).

A benchmark whose module does not exist yet is reported as ``missing``; one that fails as
``failed`` with the end of its output. Exit status 1 if any failed. The stack (Kafka, Redis) must
be up: ``stockstream stack up``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO, BenchOutput, BenchReport, BenchResult, Figure, machine, now

PAGE = REPO / "docs" / "benchmarks.md"
"""The benchmarks page: the report of the last run of every benchmark."""


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    what: str  # one line for the docs: what is compared with what


BENCHES = (
    Bench("indicators", "bench.bench_indicators", "indicator engine and pipeline step vs talipp"),
    Bench("strategies", "bench.bench_strategies",
          "compiled strategies vs today's rule engine per tick; batch engine with 20 strategies vs talipp"),
    Bench("ingest", "bench.bench_ingest", "ingest service vs a bare Kafka producer loop"),
    Bench("processor_ab", "bench.bench_processor_ab",
          "processor CPU per record through Kafka (quick: in-process), default and 20 strategies, vs the release"
          " before strategies (20b01b4)"),
    Bench("process", "bench.bench_process", "stream processor vs a Quix Streams pass-through, both guarantees"),
    Bench("latency", "bench.bench_latency", "tick → signal latency beside a pass-through on the same ticks: "
          "exactly-once (commit-interval sweep with throughput, one core busy) and at-least-once"),
    Bench("recovery", "bench.bench_recovery", "processor recovery time after a kill"),
    Bench("materialize", "bench.bench_materialize", "materializer vs plain Redis pipelining"),
    Bench("backfill", "bench.bench_backfill", "Spark backfill vs replay vs vectorized"),
    Bench("backfill_group", "bench.bench_backfill_group", "backfill group step: kernel (columnar) vs per-tick, in-process"),
    Bench("sweep", "bench.bench_sweep", "Spark parameter sweep vs vectorbt, and the grid over 1M bars"),
    Bench("backtest", "bench.bench_backtest", "one strategy backtested over 1M ticks vs vectorbt"),
    Bench("notify", "bench.bench_notify", "notifier vs the bare webhook sender"),
    Bench("runs_warmup", "bench.bench_runs_warmup", "a run's warm-up (state only) vs the same run emitting everything"),
)
TIMEOUT_S = {True: 900, False: 3 * 3600}


def _missing(module: str) -> str | None:
    """Why ``module`` cannot be run yet (absent, or without the ``run(quick)`` entry point), or None."""
    spec = importlib.util.find_spec(module)
    path = f"{module.replace('.', '/')}.py"
    if spec is None or spec.origin is None:
        return f"{path} is not in the repository (yet)"
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    if not any(isinstance(node, ast.FunctionDef) and node.name == "run" for node in tree.body):
        return f"{path} has no run(quick) entry point (yet)"
    return None


def _child(name: str, quick: bool, result: Path) -> None:
    """Inside the benchmark's own process: run it and write its :class:`BenchOutput`."""
    bench = next(b for b in BENCHES if b.name == name)
    module = importlib.import_module(bench.module)
    output: BenchOutput = module.run(quick)
    result.write_text(BenchOutput.model_validate(output).model_dump_json(indent=1))


def _tee(stream: object, sink: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sys.stderr.write(line)
        sink.append(line)


def run_one(bench: Bench, quick: bool) -> BenchResult:
    """One benchmark in a fresh interpreter; its output echoed, its figures collected."""
    missing = _missing(bench.module)
    if missing is not None:
        return BenchResult(name=bench.name, module=bench.module, status="missing", seconds=0.0, error=missing)
    print(f"\n=== {bench.name}: {bench.what} ({'quick' if quick else 'full'})", file=sys.stderr, flush=True)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"bench-{bench.name}-") as folder:
        result = Path(folder) / "output.json"
        lines: list[str] = []
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "bench.run_all", "--child", bench.name, "--result", str(result),
             *(["--quick"] if quick else [])],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        reader = threading.Thread(target=_tee, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            code = process.wait(TIMEOUT_S[quick])
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
            lines.append(f"\n[run_all] killed after {TIMEOUT_S[quick]}s\n")
        reader.join(10)
        seconds = round(time.monotonic() - began, 1)
        if code == 0 and result.exists():
            output = BenchOutput.model_validate_json(result.read_text())
            return BenchResult(name=bench.name, module=bench.module, status="ok", seconds=seconds, output=output)
        return BenchResult(name=bench.name, module=bench.module, status="failed", seconds=seconds,
                           error=f"exit {code}: " + "".join(lines)[-3000:])


# -- the docs page --------------------------------------------------------------------------------------

def _number(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):  # NaN or infinite
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _ratio(figure: Figure, marker: str = "") -> str:
    text = (f"{figure.ratio:.2f}" if figure.ratio >= 0.1 else f"{figure.ratio:.2g}") + marker + "×"
    if figure.goal is not None:
        text += f" (goal ≥ {figure.goal:g}×: {'met' if figure.goal_met else 'NOT met'})"
    if figure.target is not None:
        bound = f"≥ {_number(figure.target)}" if figure.better == "higher" else f"< {_number(figure.target)}"
        text += f" (target {bound} {figure.unit}: {'met' if figure.target_met else 'NOT met'})"
    return text


def _fig(results_file: str, path: str) -> str:
    """The marker that ties a figure on the page to its place in the results JSON (bench/figures.py)."""
    return f"<!--fig {results_file}: {path}-->"


def render_markdown(report: BenchReport, results_file: str | None = None) -> str:
    """The page: every figure followed by a marker naming ``results_file`` and the figure's JSON path."""
    m = report.machine
    results_file = results_file or f"bench/results/{report.started_at:%Y-%m-%d}{'-quick' if report.quick else ''}.json"

    def fig(path: str) -> str:
        return _fig(results_file, path)

    load = ", ".join(f"{value:.2f}{fig(f'machine.load_average_at_start[{index}]')}"
                     for index, value in enumerate(m.load_average_at_start))
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run_all.py`) — do not edit by hand; the raw numbers are in",
        f"`{results_file}`. Each figure stands beside its",
        "**baseline measured in the same run** (the library, bare client or pass-through one would use",
        "instead). *ratio* = how many times better than the baseline, in the unit's direction (> 1: better;",
        "for times, baseline ÷ ours). Run: `make bench` (full) or `make bench-quick` (small sizes,",
        "a few minutes; figures are then only indicative). Each figure is followed by an HTML comment naming",
        "its place in the JSON, checked by `tests/unit/bench/test_bench_figures.py` (`bench/figures.py`).",
        "",
        f"Run {report.started_at:%Y-%m-%d %H:%M} → {report.finished_at:%H:%M} UTC, "
        f"{'**quick mode**' if report.quick else 'full mode'}.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPUs (nproc) | {m.nproc}{fig('machine.nproc')} |",
        f"| memory | {m.memory_gib:g}{fig('machine.memory_gib')} GiB |",
        f"| CPU model | {m.cpu_model} |",
        f"| load average at start (1, 5, 15 min) | {load} |",
        f"| Python / Java / Kafka / Redis / PySpark | {m.python} / {m.java} / {m.kafka} / {m.redis} / {m.pyspark} |",
        f"| OS | {m.platform} |",
        "",
        "| benchmark | figure | unit | ours | baseline | ratio | how |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in report.benches:
        if result.output is None:
            said = [line.strip() for line in (result.error or "").splitlines() if line.strip()]
            lines.append(f"| {result.name} | **{result.status}**: {(said[-1] if said else '')[:160]} | | | | | |")
            continue
        for index, figure in enumerate(result.output.figures):
            # By position: two figures of a benchmark may share a name, and a name may hold "=" or brackets.
            path = f"benches[{result.name}].output.figures[{index}]"

            def text(field: str, value: str, path: str = path) -> str:  # the JSON's string, numbers and all
                return f"{value}<!--text {results_file}: {path}.{field}-->" if value else ""

            lines.append(
                f"| {result.name} | {text('name', figure.name)} | {figure.unit} | **{_number(figure.ours.value)}**"
                f"{fig(path + '.ours.value')} {text('ours.label', figure.ours.label)} | "
                f"{_number(figure.baseline.value)}{fig(path + '.baseline.value')} "
                f"{text('baseline.label', figure.baseline.label)} "
                f"| {_ratio(figure, fig(path + '.ratio'))} | {text('how', figure.how)} |")
    lines += ["", "Per benchmark (parameters; run time of the whole benchmark process):", ""]
    for result in report.benches:
        bench = next((b for b in BENCHES if b.name == result.name), None)
        params = ", ".join(f"{key} {value}" for key, value in (result.output.params if result.output else {}).items())
        lines.append(f"- **{result.name}** (`{result.module.replace('.', '/')}.py`, {bench.what if bench else ''}): "
                     f"{result.status}, {result.seconds:g}{fig(f'benches[{result.name}].seconds')} s"
                     + (f"; {params}" if params else ""))
    return "\n".join(lines) + "\n"


def _relative(path: Path) -> str:
    """``path`` as the docs name it: relative to the repository when it is inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


# -- entry point -----------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
                        help="small sizes, a few minutes (also BENCH_QUICK=1)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="folder of the result JSON")
    parser.add_argument("--docs", type=Path,
                        help=f"the page to write (default {_relative(PAGE)}, but only after a run of every benchmark)")
    parser.add_argument("--render", type=Path, help="only write the page again from this results JSON")
    parser.add_argument("--no-update", action="store_true",
                        help="do not rewrite the figures of README.md and docs/*.md from a full run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.quick, args.result)
        return 0
    if args.render:
        report = BenchReport.model_validate_json(args.render.read_text())
        page = args.docs or PAGE
        page.write_text(render_markdown(report, _relative(args.render)))
        print(f"wrote {page} from {args.render}", file=sys.stderr)
        return 0

    wanted = [name for name in args.only.split(",") if name] or [bench.name for bench in BENCHES]
    unknown = set(wanted) - {bench.name for bench in BENCHES}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = now()
    host = machine()
    results = [run_one(bench, args.quick) for bench in BENCHES if bench.name in wanted]
    report = BenchReport(started_at=started, finished_at=now(), quick=args.quick, machine=host, benches=results)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{started:%Y-%m-%d}{'-quick' if args.quick else ''}.json"
    path.write_text(report.model_dump_json(indent=1) + "\n")
    page = args.docs or (None if args.only else PAGE)
    if page is None:
        print(f"\nwrote {path} ({_relative(PAGE)} shows the last run of every benchmark: left alone;"
              " --docs FILE writes this run's page)", file=sys.stderr)
    else:
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(render_markdown(report, _relative(path)))
        print(f"\nwrote {path} and {page}", file=sys.stderr)
    for result in results:
        print(f"  {result.name:<12} {result.status:<8} {result.seconds:>8.1f}s", file=sys.stderr)
    if not (args.quick or args.only or args.no_update):
        update_docs(_relative(path))
    return 1 if any(result.status == "failed" for result in results) else 0


def update_docs(run: str) -> list[str]:
    """The figures of README.md and docs/*.md rewritten from ``run`` (a full run); returns what is left to look at.

    Called by :func:`main` after a full run; the figures that quote the previous ``make bench`` run and
    the pending ones are taken from ``run`` (:func:`bench.figures.update`). Prints what changed, the
    figures kept on an older file, and the problems :func:`bench.figures.check` still finds."""
    from bench import figures

    previous = figures.previous_bench_run(run)
    changed, kept = figures.update(run, previous)
    print(f"\nfigures taken from {run}" + (f" (replacing {previous})" if previous else "") + ":", file=sys.stderr)
    for name, count in changed.items():
        print(f"  {name}: {count}", file=sys.stderr)
    problems = figures.check()
    # The prose that still names the replaced run (dates, "the last make bench"): to read again by hand.
    prose = [f"{document.relative_to(REPO)}:{number}: the text names {previous}"
             for document in figures.documents() if previous
             for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), 1)
             if previous in figures.COMMENT.sub("", line)]
    for line in [*kept, *problems, *prose]:
        print(f"  {line}", file=sys.stderr)
    return [*kept, *problems, *prose]


if __name__ == "__main__":
    sys.exit(main())
