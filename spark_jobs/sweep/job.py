"""The sweep on Spark: every combination of a grid over one instrument's bars → Parquet, best first; walk-forward.

Called by ``stockstream sweep`` and bench/bench_sweep.py with a started session. The bars are
broadcast once; the combinations (a small table of parameters) are spread over
``tasks`` partitions and each task runs :func:`spark_jobs.sweep.kernel.sweep` through ``mapInPandas``,
combination by combination, yielding result rows in small batches — no task ever holds more than a
few series of the bars' length, whatever the grid (the ~300 GB matrix of 4,851 × 1M never exists).
All results go to Parquet (a dotted grid name such as ``trend.fast`` is the column ``trend__fast``); the best are read back from it. Locally ``local[*]``; on a cluster only
the master changes.

Walk-forward ``IS:OOS`` (e.g. 6:1) with ``folds`` folds: the bars are cut into ``IS + folds`` equal
units; fold f picks the best combination on units ``[f, f + IS)`` (in-sample) and reports it on unit
``f + IS`` (out-of-sample; indicators warmed on the bars before it, trading from its first bar with
fresh capital). The out-of-sample figures are the honest ones; their chained return is reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_jobs.backtest.simulate import SimulationConfig
from spark_jobs.sweep.kernel import RESULT_COLUMNS, Bars, MovingAverageCross, SweepStrategy, evaluate, sweep

BATCH = 256  # result rows per Arrow batch out of a task


@dataclass(frozen=True)
class SweepRequest:
    combinations: list[dict[str, int | float]]
    config: SimulationConfig
    average: str = "sma"
    metric: str = "sharpe"
    tasks: int | None = None  # None: 4 × the default parallelism
    strategy: SweepStrategy | None = None  # None: the moving-average crossover of ``average``

    def chosen_strategy(self) -> SweepStrategy:
        return self.strategy if self.strategy is not None else MovingAverageCross(self.average)


@dataclass(frozen=True)
class Fold:
    fold: int
    in_sample: tuple[int, int]  # bar index range [start, stop)
    out_of_sample: tuple[int, int]


def walk_forward_folds(bars: int, in_sample: int, out_of_sample: int, folds: int) -> list[Fold]:
    """The folds of ``IS:OOS`` over ``bars`` bars (rolling windows, each OOS unit after its IS units)."""
    if min(in_sample, out_of_sample, folds) < 1:
        raise ValueError("walk-forward needs IS ≥ 1, OOS ≥ 1 and at least one fold")
    unit = bars // (in_sample + out_of_sample * folds)
    if unit < 2:
        raise ValueError(f"{bars} bars are too few for {folds} folds of {in_sample}:{out_of_sample}")
    found = []
    for fold in range(folds):
        start = fold * out_of_sample * unit
        split = start + in_sample * unit
        stop = split + out_of_sample * unit
        found.append(Fold(fold, (start, split), (split, stop)))
    return found


def column_name(name: str) -> str:
    """A grid name as a Spark/Parquet column: ``trend.fast`` → ``trend__fast`` (a dot would read as a struct field)."""
    return name.replace(".", "__")


def _schema(names: list[str]) -> str:
    return ", ".join([*(f"`{name}` double" for name in names), *(f"{column} double" for column in RESULT_COLUMNS)])


def run_sweep(spark: SparkSession, bars: Bars, request: SweepRequest, output: str | None,
              window: tuple[int, int] | None = None) -> pd.DataFrame:
    """Evaluate every combination (on bars ``window`` = [start, stop) when given); returns all results,
    best ``request.metric`` first, after writing them to ``output`` (Parquet) when given."""
    names = list(request.combinations[0])
    columns = [column_name(name) for name in names]
    start, stop = window if window is not None else (0, len(bars))
    chosen = bars.slice(0, stop)
    tasks = request.tasks or 4 * spark.sparkContext.defaultParallelism
    table = pd.DataFrame(request.combinations, columns=names).astype("float64").set_axis(columns, axis=1)
    table["task"] = [index % tasks for index in range(len(table))]
    shared = spark.sparkContext.broadcast((chosen.times, chosen.open, chosen.close))
    config, given = request.config, request.strategy
    average = request.average

    def run_task(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        times, opens, closes = shared.value
        series = Bars(times, opens, closes)
        strategy = given if given is not None else MovingAverageCross(average)
        rows: list[dict[str, float]] = []
        for batch in batches:
            parameters = [{name: (int(value) if float(value).is_integer() else value)
                           for name, value in zip(names, row, strict=True)}
                          for row in batch[columns].itertuples(index=False)]
            for result in sweep(strategy, series, parameters, config, start):
                rows.append({column_name(key): value for key, value in result.items()})
                if len(rows) >= BATCH:
                    yield pd.DataFrame(rows)
                    rows = []
        if rows:
            yield pd.DataFrame(rows)

    frame = (spark.createDataFrame(table).repartition(tasks, "task")
             .mapInPandas(run_task, _schema(columns)))
    if output is not None:
        frame.write.mode("overwrite").parquet(output)
        frame = spark.read.parquet(output)
    results = frame.orderBy(F.col(request.metric).desc_nulls_last(), *columns).toPandas()
    results = results.rename(columns=dict(zip(columns, names, strict=True)))
    shared.unpersist()
    return results


def walk_forward(spark: SparkSession, bars: Bars, request: SweepRequest, in_sample: int, out_of_sample: int,
                 folds: int, output: str | None) -> list[dict[str, Any]]:
    """Per fold: the in-sample best (by ``request.metric``) and its out-of-sample results."""
    names = list(request.combinations[0])
    report = []
    strategy = request.chosen_strategy()
    for fold in walk_forward_folds(len(bars), in_sample, out_of_sample, folds):
        target = None if output is None else str(Path(output) / f"fold={fold.fold}")
        results = run_sweep(spark, bars, request, target, fold.in_sample)
        best = results.iloc[0]
        parameters = {name: (int(best[name]) if float(best[name]).is_integer() else float(best[name])) for name in names}
        head = bars.slice(0, fold.out_of_sample[1])
        outside = evaluate(strategy.signals(parameters, head), head, request.config, fold.out_of_sample[0])
        report.append({"fold": fold.fold, "in_sample_bars": fold.in_sample, "out_of_sample_bars": fold.out_of_sample,
                       "parameters": parameters, "in_sample_metric": float(best[request.metric]),
                       "out_of_sample": {**outside}})
    return report


def chained_return(report: list[dict[str, Any]]) -> float:
    """The out-of-sample folds' returns compounded (the walk-forward's honest total)."""
    return math.prod(1.0 + fold["out_of_sample"]["total_return"] for fold in report) - 1.0


def heatmap(results: pd.DataFrame, x: str, y: str, metric: str, path: Path) -> None:
    """A PNG of ``metric`` over two parameters (best value where other parameters vary)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pivot = results.groupby([y, x])[metric].max().unstack(x)
    figure, axes = plt.subplots(figsize=(8, 6.5), dpi=110)
    image = axes.imshow(pivot.to_numpy(), origin="lower", aspect="auto", cmap="viridis",
                        extent=(pivot.columns.min() - 0.5, pivot.columns.max() + 0.5,
                                pivot.index.min() - 0.5, pivot.index.max() + 0.5))
    figure.colorbar(image, ax=axes, label=metric)
    axes.set_xlabel(x)
    axes.set_ylabel(y)
    axes.set_title(f"{metric} over {x} × {y}")
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
