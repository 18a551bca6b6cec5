"""The benchmark report: ``bench.run_all --quick`` end to end on the cheapest benchmark, and the format.

Runs the real runner (own process per benchmark) on ``indicators`` (CPU only, a few seconds),
then reads the result JSON back through the report model and checks that every figure stands
beside a same-run baseline, the machine is described, and the docs page shows each pair, each figure
followed by the marker that names its place in the JSON (bench/figures.py). The
format checks on missing/failed benchmarks use a report built here.
"""

from __future__ import annotations

import ast
import json
import math
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import figures, run_all
from bench.common import REPO, BenchOutput, BenchReport, BenchResult, Figure, Measure, machine
from bench.run_all import BENCHES, render_markdown


def test_quick_run_writes_a_report_where_every_figure_has_its_baseline(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    run = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bench.run_all", "--quick", "--only", "indicators", "--out", str(tmp_path),
         "--docs", str(docs)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    (path,) = tmp_path.glob("*-quick.json")
    report = BenchReport.model_validate_json(path.read_text())
    assert report.quick and report.schema_version == 1 and report.finished_at >= report.started_at
    host = report.machine
    assert host.nproc >= 1 and host.memory_gib > 0 and host.cpu_model and host.python == platform.python_version()
    assert len(host.load_average_at_start) == 3 and host.java and host.kafka
    (result,) = report.benches
    assert result.name == "indicators" and result.status == "ok" and result.output is not None
    assert len(result.output.figures) >= 4
    for figure in result.output.figures:
        assert figure.ours.label and figure.baseline.label and figure.unit and figure.how
        for value in (figure.ours.value, figure.baseline.value):
            assert math.isfinite(value) and value > 0
        assert math.isclose(figure.ratio, figure.ours.value / figure.baseline.value)
    engine = result.output.figures[0]
    assert engine.goal == 5.0 and engine.goal_met is (engine.ratio >= 5.0)

    marked = docs.read_text()
    # Every figure on the page is followed by a marker naming its place in the JSON, and is its value.
    document = json.loads(path.read_text())
    found = figures.markers(docs, marked)
    assert len(found) >= 3 * len(result.output.figures) + 4
    for marker in found:
        assert marker.source == str(path) and marker.shown is not None and marker.expression
        assert marker.shown.agrees_with(figures.evaluate(document, marker.expression)), marker
    assert figures.unmarked_figures(docs, marked) == []
    page = re.sub(r"<!--.*?-->", "", marked)
    assert f"| CPUs (nproc) | {host.nproc} |" in page and host.cpu_model in page
    rows = [line for line in page.splitlines() if line.startswith("| indicators |")]
    assert len(rows) == len(result.output.figures)
    for row, figure in zip(rows, result.output.figures, strict=True):
        assert figure.ours.label in row and figure.baseline.label in row and f"{figure.ratio:.2f}×" in row


def _figure(better: str, ours: float, baseline: float) -> Figure:
    return Figure(name="f", unit="ms" if better == "lower" else "x/s", better=better,  # type: ignore[arg-type]
                  ours=Measure(label="ours", value=ours), baseline=Measure(label="base", value=baseline), goal=2.0)


def test_ratio_is_better_than_baseline_whatever_the_direction_and_survives_a_round_trip() -> None:
    faster, quicker = _figure("higher", 300.0, 100.0), _figure("lower", 5.0, 20.0)
    assert faster.ratio == 3.0 and quicker.ratio == 4.0 and faster.goal_met and quicker.goal_met
    again = Figure.model_validate_json(faster.model_dump_json())
    assert again == faster and again.ratio == 3.0


def test_an_absolute_target_is_judged_in_the_unit_direction_and_shown() -> None:
    rate = Figure(name="r", unit="deliveries/s", better="higher", ours=Measure(label="ours", value=1200.0),
                  baseline=Measure(label="base", value=600.0), target=1000.0)
    p99 = Figure(name="p", unit="ms", better="lower", ours=Measure(label="ours", value=1500.0),
                 baseline=Measure(label="base", value=3.0), target=1000.0)
    assert rate.target_met is True and p99.target_met is False and _figure("higher", 1, 1).target_met is None
    assert Figure.model_validate_json(p99.model_dump_json()) == p99
    report = BenchReport(
        started_at=datetime(2026, 11, 27, 12, tzinfo=UTC), finished_at=datetime(2026, 11, 27, 13, tzinfo=UTC),
        quick=False, machine=machine(), benches=[
            BenchResult(name="notify", module="bench.bench_notify", status="ok", seconds=9.0,
                        output=BenchOutput(figures=[rate, p99]))])
    page = render_markdown(report)
    assert "(target ≥ 1 000 deliveries/s: met)" in page and "(target < 1 000 ms: NOT met)" in page


def test_missing_and_failed_benchmarks_are_reported_not_hidden() -> None:
    report = BenchReport(
        started_at=datetime(2026, 11, 27, 12, tzinfo=UTC), finished_at=datetime(2026, 11, 27, 13, tzinfo=UTC),
        quick=False, machine=machine(), benches=[
            BenchResult(name="latency", module="bench.bench_latency", status="missing", seconds=0.0,
                        error="bench/bench_latency.py is not in the repository (yet)"),
            BenchResult(name="ingest", module="bench.bench_ingest", status="failed", seconds=3.0,
                        error="exit 1: Traceback …\nKafkaException: broker down"),
            BenchResult(name="notify", module="bench.bench_notify", status="ok", seconds=9.0,
                        output=BenchOutput(figures=[_figure("lower", 5.0, 20.0)])),
        ])
    page = re.sub(r"<!--.*?-->", "", render_markdown(report))
    assert "| latency | **missing**: bench/bench_latency.py is not in the repository (yet)" in page
    assert "| ingest | **failed**: KafkaException: broker down" in page
    assert "| notify | f | ms | **5** ours | 20.0 base | 4.00× (goal ≥ 2×: met) |" in page
    assert BenchReport.model_validate_json(report.model_dump_json()) == report


def test_every_benchmark_module_present_exposes_the_common_entry_point() -> None:
    for bench in BENCHES:
        path = REPO / f"{bench.module.replace('.', '/')}.py"
        if not path.exists():
            continue  # reported as missing by the runner
        tree = ast.parse(path.read_text())
        if bench.name in ("latency", "recovery", "backfill") and not any(
                isinstance(node, ast.FunctionDef) and node.name == "run" for node in tree.body):
            continue  # still being written by their owners; the runner reports them as missing
        run = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "run"]
        assert run and [arg.arg for arg in run[0].args.args] == ["quick"], bench.module


def test_a_partial_run_leaves_the_page_of_the_last_full_run_alone(tmp_path: Path, monkeypatch) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("the last full run\n")
    monkeypatch.setattr(run_all, "PAGE", page)
    monkeypatch.setattr(run_all, "run_one", lambda bench, quick: BenchResult(
        name=bench.name, module=bench.module, status="ok", seconds=1.0,
        output=BenchOutput(figures=[_figure("lower", 5.0, 20.0)])))
    assert run_all.main(["--only", "indicators", "--out", str(tmp_path / "partial"), "--no-update"]) == 0
    assert page.read_text() == "the last full run\n" and len(list((tmp_path / "partial").glob("*.json"))) == 1
    own = tmp_path / "own.md"
    assert run_all.main(["--only", "indicators", "--out", str(tmp_path / "partial"), "--docs", str(own),
                         "--no-update"]) == 0
    assert "| indicators | f |" in re.sub(r"<!--.*?-->", "", own.read_text())
    assert run_all.main(["--out", str(tmp_path / "full"), "--no-update"]) == 0  # every benchmark: the page is its
    assert all(f"| {bench.name} | f |" in re.sub(r"<!--.*?-->", "", page.read_text()) for bench in BENCHES)
