"""The sweep on the real Spark session equals a loop of single backtests; walk-forward runs on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from processors.core.vector.indicators import sma
from spark_jobs.backtest.simulate import SimulationConfig, simulate
from spark_jobs.sweep.grid import combinations, parse_grid
from spark_jobs.sweep.job import (
    SweepRequest,
    chained_return,
    heatmap,
    run_sweep,
    walk_forward,
    walk_forward_folds,
)
from spark_jobs.sweep.kernel import Bars, cross_signals

pytestmark = pytest.mark.spark


def _bars(count=3_000, seed=5):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 2e-3, count)))
    open_ = np.concatenate([[close[0]], close[:-1]]) * (1 + rng.normal(0, 5e-4, count))
    return Bars(np.arange(count, dtype=np.int64) * 60_000_000, open_, close)


def test_sweep_equals_a_loop_of_single_backtests(spark_session, tmp_path):
    bars = _bars()
    combos = combinations(parse_grid("fast=2..12:2, slow=5..40:5"), ("fast", "slow"))
    config = SimulationConfig(fee=0.001)
    results = run_sweep(spark_session.spark, bars, SweepRequest(combos, config, metric="total_return", tasks=3),
                        str(tmp_path / "out"))
    assert len(results) == len(combos)
    assert len(pd.read_parquet(tmp_path / "out")) == len(combos), "every combination is in the Parquet output"
    assert list(results["total_return"]) == sorted(results["total_return"], reverse=True), "best first"
    indexed = results.set_index(["fast", "slow"])
    for combo in combos:
        signal = cross_signals(sma(bars.close, combo["fast"]), sma(bars.close, combo["slow"]))
        single = simulate(bars.open, bars.close, bars.close, bars.close, signal, config)
        row = indexed.loc[(float(combo["fast"]), float(combo["slow"]))]
        assert int(row["trades"]) == single.trade_count
        assert row["final_equity"] == single.final_equity  # the same loop, the same bits
    heatmap(results, "fast", "slow", "total_return", tmp_path / "heat.png")
    assert (tmp_path / "heat.png").read_bytes().startswith(b"\x89PNG")


def test_walk_forward_picks_in_sample_and_reports_out_of_sample(spark_session, tmp_path):
    bars = _bars(2_100, seed=9)
    combos = combinations(parse_grid("fast=2..10:4, slow=12..30:9"), ("fast", "slow"))
    request = SweepRequest(combos, SimulationConfig(fee=0.001), metric="total_return", tasks=2)
    report = walk_forward(spark_session.spark, bars, request, 6, 1, 3, str(tmp_path / "wf"))
    folds = walk_forward_folds(len(bars), 6, 1, 3)
    assert [fold["out_of_sample_bars"] for fold in report] == [fold.out_of_sample for fold in folds]
    for fold, split in zip(report, folds, strict=True):
        in_sample = run_sweep(spark_session.spark, bars, request, None, split.in_sample)
        best = in_sample.iloc[0]
        assert (fold["parameters"]["fast"], fold["parameters"]["slow"]) == (best["fast"], best["slow"])
        # the out-of-sample figure: the pick traded on the OOS bars alone (indicators warmed before them)
        start, stop = split.out_of_sample
        signal = cross_signals(sma(bars.close[:stop], int(best["fast"])), sma(bars.close[:stop], int(best["slow"])))
        alone = simulate(bars.open[start:stop], bars.close[start:stop], bars.close[start:stop], bars.close[start:stop],
                         signal[start:], request.config)
        assert fold["out_of_sample"]["final_equity"] == alone.final_equity
    assert chained_return(report) == pytest.approx(
        np.prod([1 + fold["out_of_sample"]["total_return"] for fold in report]) - 1)


STRATEGY_FILE = """
[strategies.trend]
timeframe = "5m"
params = { fast = 5, slow = 20 }
buy = "crosses_above(ema(fast), ema(slow)) and rsi(14) < 75"
sell = "crosses_below(ema(fast), ema(slow))"
"""


def _ticks_frame(count=8_000, seed=11):
    rng = np.random.default_rng(seed)
    prices = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 1.5e-3, count))), 2)
    times = 1_704_067_200_000_000 + np.cumsum(rng.integers(5_000_000, 40_000_000, count))
    return pd.DataFrame({"ts_us": times, "symbol": "BTC-USD", "price": prices, "volume": np.round(rng.random(count), 3)})


def test_a_strategy_file_sweep_equals_a_loop_of_single_backtests(spark_session, tmp_path):
    """Each row of ``sweep --strategy`` = ``backtest --strategy --set`` of its parameters (the portfolio path)."""
    from spark_jobs.backtest.portfolio import run_portfolio
    from spark_jobs.backtest.rulefile import RuleFile
    from spark_jobs.sweep.rules import RuleFileStrategy

    path = tmp_path / "strategies.toml"
    path.write_text(STRATEGY_FILE)
    rule_file = RuleFile.read(path)
    ticks = _ticks_frame()
    strategy = RuleFileStrategy(rule_file, "BTC-USD", ticks["ts_us"].to_numpy(), ticks["price"].to_numpy(),
                                ticks["volume"].to_numpy(), "5m")
    combos = combinations(parse_grid("trend.fast=3..9:3, trend.slow=15..35:10"))
    config = SimulationConfig(fee=0.001)
    results = run_sweep(spark_session.spark, strategy.bars(), SweepRequest(combos, config, metric="total_return",
                                                                           tasks=3, strategy=strategy),
                        str(tmp_path / "out"))
    assert len(results) == len(pd.read_parquet(tmp_path / "out")) == len(combos)
    indexed = results.set_index(["trend.fast", "trend.slow"])
    traded = 0
    for combo in combos:
        single = run_portfolio(ticks, ["BTC-USD"], "5m", config, rule_file=rule_file, overrides=combo).instruments[0]
        row = indexed.loc[(float(combo["trend.fast"]), float(combo["trend.slow"]))]
        assert int(row["trades"]) == single.simulation.trade_count
        assert row["final_equity"] == single.simulation.final_equity  # the same signals and loop: the same bits
        traded += single.simulation.trade_count
    assert traded > len(combos), "the grid trades"
    report = walk_forward(spark_session.spark, strategy.bars(), SweepRequest(combos, config, metric="total_return",
                                                                             tasks=2, strategy=strategy),
                          3, 1, 2, None)
    assert len(report) == 2 and all(set(fold["parameters"]) == {"trend.fast", "trend.slow"} for fold in report)
