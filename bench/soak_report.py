"""The figures of one soak, as Markdown for docs/chaos.md, each followed by its marker (bench/figures.py).

    .venv/bin/python -m bench.soak_report bench/results/soak-<date>.json

Prints the run's configuration, throughput, memory and lag tables, latency summary and verdict,
every number taken from the results file ``bench.soak`` wrote and followed by the marker that names
its place in it, so ``tests/unit/bench/test_bench_figures.py`` can check the page against the file.
Window summaries a run does not hold (soaks before the summaries were recorded) are left out, not
estimated.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import REPO


def _relative(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def render(path: Path) -> str:
    """The Markdown block for the soak in ``path``."""
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    source = _relative(path)
    config, figures = report["config"], report["figures"]

    def fig(json_path: str, value: float, decimals: int = 1, thousands: bool = False) -> str:
        text = f"{value:,.{decimals}f}" if thousands else f"{value:.{decimals}f}"
        return f"{text}<!--fig {source}: {json_path}-->"

    def expr(expression: str, value: float, decimals: int = 1) -> str:
        return f"{value:.{decimals}f}<!--fig {source}: {expression}-->"

    load = figures["load_average"]
    lines = [
        f"Figures: `{source}` (every sample). Config: {expr('{config.duration_s} / 60', config['duration_s'] / 60, 0)}"
        " min at "
        f"{fig('config.rate', config['rate'], 0)} ticks/s over {fig('config.symbols', config['symbols'], 0)} symbols, "
        f"{fig('config.notify_replicas', config['notify_replicas'], 0)} notifier instances, sample every "
        f"{fig('config.sample_every_s', config['sample_every_s'], 0)} s, warm-up {fig('config.warm_up_s', config['warm_up_s'], 0)} s, "
        f"memory judged over the first and last {fig('config.judge_window_s', config['judge_window_s'], 0)} s after it, "
        f"latency windows {fig('config.latency_window_s', config['latency_window_s'], 0)} s. Started {report['started']}; "
        f"achieved {fig('figures.achieved_rate', figures['achieved_rate'], 1)} ticks/s, "
        f"{fig('figures.ticks', figures['ticks'], 0, thousands=True)} ticks, "
        f"{fig('deliveries', report['deliveries'], 0, thousands=True)} webhook deliveries; consumers ready and assigned "
        f"{fig('figures.consumers_ready_s', figures['consumers_ready_s'], 1)} s after start. Load average (1 min) median "
        f"{fig('figures.load_average.median', load['median'], 1)}, max {fig('figures.load_average.max', load['max'], 1)}.",
        "",
        "| service | RSS after warm-up (MiB) | RSS at end (MiB) | growth | max (MiB) |",
        "|---|---|---|---|---|",
    ]
    for name, entry in figures["memory"].items():
        base = f"figures.memory[{name}]"
        label = name if name not in ("kafka", "redis") else f"{name} (reference, not judged)"
        lines.append(
            f"| {label} | {fig(base + '.after_warm_up_mb', entry['after_warm_up_mb'])} "
            f"| {fig(base + '.end_mb', entry['end_mb'])} "
            f"| +{expr('{' + base + '.growth} * 100', entry['growth'] * 100)} % "
            f"| {fig(base + '.max_mb', entry['max_mb'])} |")
    lines += ["", "| consumer lag (records) | max | median | last-window median | bound |", "|---|---|---|---|---|"]
    for part, entry in figures["lag_records"].items():
        base = f"figures.lag_records[{part}]"
        lines.append(f"| {part} | {fig(base + '.max', entry['max'], 0)} | {fig(base + '.median', entry['median'], 1)} "
                     f"| {fig(base + '.last_window_median', entry['last_window_median'], 1)} "
                     f"| {fig(base + '.bound', entry['bound'], 0)} |")
    p99 = figures.get("process_p99_s")
    summary = []
    if p99:
        summary.append(
            "Processor latency (tick ingest time → derived events produced), per "
            f"{fig('config.latency_window_s', config['latency_window_s'], 0)}-s window after warm-up: p99 median "
            f"{expr('{figures.process_p99_s.median_window} * 1000', p99['median_window'] * 1000, 0)} ms, max "
            f"{expr('{figures.process_p99_s.max_window} * 1000', p99['max_window'] * 1000, 0)} ms, last "
            f"{expr('{figures.process_p99_s.last_window} * 1000', p99['last_window'] * 1000, 0)} ms.")
    for key, what in (("process_p50_s", "Processor p50"), ("notify_p99_s", "Notifier p99 (signal event time → delivered)"),
                      ("view_age_p99_s", "View freshness p99 (now − newest tick the API serves)")):
        entry = figures.get(key)
        if entry:
            summary.append(
                f"{what} per window: median {expr('{figures.' + key + '.median_window} * 1000', entry['median_window'] * 1000, 0)} ms, "
                f"max {expr('{figures.' + key + '.max_window} * 1000', entry['max_window'] * 1000, 0)} ms.")
    restarts = figures.get("unplanned_restarts") or {}
    summary.append(f"ERROR lines: {fig('figures.error_lines', figures['error_lines'], 0)}. Unplanned restarts: "
                   f"{', '.join(f'{name} {count}' for name, count in restarts.items()) or 'none'}. Problems: "
                   f"{'; '.join(report['problems']) or 'none'}.")
    return "\n".join([*lines, "", " ".join(summary), ""])


def main(argv: Sequence[str] | None = None) -> int:
    for name in argv if argv is not None else sys.argv[1:]:
        print(render(Path(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
