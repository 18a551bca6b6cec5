"""``stockstream sweep``: every combination of a parameter grid over one instrument's history, on Spark.

Over a file of bars (CSV or Parquet: ``timestamp`` and ``open``/``close`` — or ``price`` for ticks), the
dual moving-average crossover (``fast``/``slow`` windows; SMA or EMA lines) is backtested for every
combination with next-bar fills and fees (docs/spark.md, "Sweeps"); all results go to Parquet and the
best are printed. ``--walk-forward 6:1`` picks on in-sample windows and reports out-of-sample.
Exit codes: 0 done; 2 nothing done (bad option, unreadable input).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from stockstream.console import console

EXIT_OK, EXIT_USAGE = 0, 2
METRICS = ("sharpe", "sortino", "total_return", "final_equity", "max_drawdown", "exposure", "trades")


def read_bars(path: Path) -> Any:
    """Bars from CSV/Parquet: ``timestamp`` (ISO or epoch ms) and ``open``/``close``, or ``price`` (ticks)."""
    import numpy as np
    import pandas as pd

    from spark_jobs.sweep.kernel import Bars

    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if "timestamp" not in frame:
        raise ValueError(f"{path}: needs a timestamp column")
    stamps = frame["timestamp"]
    times = (pd.to_datetime(stamps, unit="ms", utc=True) if np.issubdtype(stamps.dtype, np.number)
             else pd.to_datetime(stamps, utc=True))
    micros = times.to_numpy(dtype="datetime64[us]").astype(np.int64)
    if "close" in frame:
        close = frame["close"].to_numpy(dtype=np.float64)
        opens = frame["open"].to_numpy(dtype=np.float64) if "open" in frame else close
    elif "price" in frame:
        close = opens = frame["price"].to_numpy(dtype=np.float64)
    else:
        raise ValueError(f"{path}: needs close (and open) or price columns")
    if not (np.all(np.isfinite(close)) and np.all(close > 0) and np.all(np.diff(micros) >= 0)):
        raise ValueError(f"{path}: prices must be positive numbers, timestamps in order")
    return Bars(micros, np.ascontiguousarray(opens), np.ascontiguousarray(close))


def _rule_file_strategy(path: Path, input_path: Path, symbol: str | None, timeframe: str | None,
                        rules: str | None, grid: dict[str, list[int | float]]) -> Any:
    """The :class:`~spark_jobs.sweep.rules.RuleFileStrategy` of ``--strategy`` over one instrument of a ticks file."""
    from spark_jobs.backtest.data import select
    from spark_jobs.backtest.portfolio import read_ticks
    from spark_jobs.backtest.rulefile import RuleFile, traded
    from spark_jobs.sweep.rules import RuleFileStrategy

    rule_file = RuleFile.read(path)
    if rule_file is None:
        raise ValueError(f"{path}: not a rule-language strategy file (no [strategies.NAME] tables)")
    declared = rule_file.parameters()
    for name in grid:
        if name not in declared and not any(key.rpartition(".")[2] == name for key in declared):
            raise ValueError(f"grid parameter {name!r} is not declared in {path} (declared: {', '.join(declared) or 'none'})")
    definitions = rule_file.definitions()
    names = tuple(r.strip() for r in (rules or "").split(",") if r.strip())
    if timeframe is None:
        found = sorted({d.timeframe for d in definitions if not names or d.name in names})
        if len(found) != 1:
            raise ValueError(f"the strategies run on {', '.join(found)}: pick one with --timeframe")
        timeframe = found[0]
    traded(definitions, timeframe, names)
    ticks = read_ticks(input_path)
    available = sorted(set(ticks["symbol"]))
    wanted, at, venue = (symbol or "").strip().partition("@")
    chosen, missing = select(available, [f"{wanted.upper()}{at}{venue.lower()}"] if symbol else [])
    if missing or len(chosen) != 1:
        raise ValueError(f"pick one instrument with --symbol (the input has {', '.join(available)})")
    own = ticks[ticks["symbol"] == chosen[0]].sort_values("ts_us", kind="stable")
    return RuleFileStrategy(rule_file, chosen[0], own["ts_us"].to_numpy(), own["price"].to_numpy(dtype=float),
                            own["volume"].to_numpy(dtype=float), timeframe, names)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def sweep(
    input_path: Annotated[Path, typer.Option("--input", help="Bars or ticks: CSV or Parquet (timestamp, open, close | price).")],
    grid: Annotated[str, typer.Option(help="Parameter grid, e.g. 'fast=2..100, slow=2..100' or 'fast=5..20:5, slow=20|50'.")] = "fast=5..20, slow=20..60:5",
    average: Annotated[str, typer.Option(help="Moving average of the crossover lines: sma or ema.")] = "sma",
    fee: Annotated[float, typer.Option(help="Fee per fill, a fraction of the notional.")] = 0.001,
    slippage: Annotated[float, typer.Option(help="Slippage per fill, a fraction of the price.")] = 0.0,
    metric: Annotated[str, typer.Option(help=f"Rank by: {', '.join(METRICS)}.")] = "sharpe",
    output: Annotated[Path, typer.Option(help="Parquet folder for every combination's results.")] = Path("sweep"),
    top: Annotated[int, typer.Option(help="How many of the best to print.")] = 10,
    walk_forward: Annotated[str | None, typer.Option("--walk-forward", help="IS:OOS units, e.g. 6:1.")] = None,
    folds: Annotated[int, typer.Option(help="Walk-forward folds.")] = 4,
    heatmap: Annotated[Path | None, typer.Option(help="PNG of the metric over fast × slow.")] = None,
    master: Annotated[str | None, typer.Option(help="Spark master (env SPARK_MASTER).", show_default="local[*]")] = None,
    strategy_file: Annotated[Path | None, typer.Option("--strategy", help="A rule-language strategy file: sweep its params (grid names 'strategy.param'); --input is then a ticks file (timestamp, symbol, price[, volume]).")] = None,
    symbol: Annotated[str | None, typer.Option(help="With --strategy: the instrument (SYMBOL or SYMBOL@venue).", show_default="the input's only one")] = None,
    timeframe: Annotated[str | None, typer.Option(help="With --strategy: the traded timeframe.", show_default="the one the file's strategies run on")] = None,
    rules: Annotated[str | None, typer.Option(help="With --strategy: comma-separated strategy names to trade.", show_default="all on the timeframe")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Sweep a parameter grid on Spark; print the best combinations (and the walk-forward report)."""
    from spark_jobs.backtest.simulate import SimulationConfig
    from spark_jobs.sweep.grid import GridError, combinations, parse_grid

    err = console(stderr=True)
    try:
        parsed = parse_grid(grid)
        strategy: Any = None
        if strategy_file is not None:
            strategy = _rule_file_strategy(strategy_file, input_path, symbol, timeframe, rules, parsed)
            combos = combinations(parsed)
        else:
            if set(parsed) != {"fast", "slow"}:
                raise GridError("the crossover sweep takes exactly the parameters fast and slow")
            combos = combinations(parsed, ("fast", "slow"))
            if not combos:
                raise GridError("no combination with fast < slow")
        if heatmap is not None and len(parsed) < 2:
            raise GridError("a heatmap needs two grid parameters")
        if metric not in METRICS:
            raise GridError(f"unknown metric {metric!r}: one of {', '.join(METRICS)}")
        if average not in ("sma", "ema"):
            raise GridError("--average is sma or ema")
        split = None
        if walk_forward is not None:
            left, _, right = walk_forward.partition(":")
            split = (int(left), int(right))
        config = SimulationConfig(fee=fee, slippage=slippage)
        bars = read_bars(input_path) if strategy is None else strategy.bars()
    except (GridError, ValueError, OSError) as error:
        err.print(f"[red]sweep: {error}[/red]")
        raise typer.Exit(EXIT_USAGE) from None

    from spark_jobs.session import build_session
    from spark_jobs.settings import SparkJobSettings
    from spark_jobs.sweep.job import SweepRequest, chained_return, run_sweep
    from spark_jobs.sweep.job import heatmap as draw_heatmap
    from spark_jobs.sweep.job import walk_forward as run_walk_forward

    settings = SparkJobSettings(**({"spark_master": master} if master else {}))
    session = build_session(settings, "stockstream-sweep")
    try:
        request = SweepRequest(combos, config, average=average, metric=metric, strategy=strategy)
        results = run_sweep(session.spark, bars, request, str(output.resolve()))
        report: dict[str, Any] = {"combinations": len(combos), "bars": len(bars), "metric": metric,
                                  "output": str(output), "best": results.head(top).to_dict("records")}
        if split is not None:
            folds_report = run_walk_forward(session.spark, bars, request, split[0], split[1], folds,
                                            str(output.resolve() / "walk_forward"))
            report["walk_forward"] = {"split": walk_forward, "folds": folds_report,
                                      "out_of_sample_return": chained_return(folds_report)}
        if heatmap is not None:
            draw_heatmap(results, *list(parsed)[:2], metric, heatmap)
            report["heatmap"] = str(heatmap)
    finally:
        session.stop()
    if as_json:
        typer.echo(json.dumps(report, default=float))
        return
    table = Table(title=f"best {top} of {len(combos)} combinations by {metric} ({len(bars):,} bars)")
    whole = {*parsed, "trades"}
    columns = [*parsed, "trades", "total_return", "sharpe", "sortino", "max_drawdown", "exposure"]
    for column in columns:
        table.add_column(column, justify="right")
    for row in report["best"]:
        table.add_row(*(_cell(int(row[c]) if c in whole and float(row[c]).is_integer() else row[c]) for c in columns))
    console().print(table)
    if split is not None:
        for fold in report["walk_forward"]["folds"]:
            oos = fold["out_of_sample"]
            typer.echo(f"fold {fold['fold']}: in-sample best {fold['parameters']} ({metric} "
                       f"{fold['in_sample_metric']:.4g}) → out-of-sample return {oos['total_return']:+.4%}, "
                       f"{metric} {_cell(float(oos[metric]))}")
        typer.echo(f"walk-forward {walk_forward}: out-of-sample return {report['walk_forward']['out_of_sample_return']:+.4%}")
    typer.echo(f"all results: {output}")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
