"""Portfolio backtests over a ticks file (spark_jobs/backtest/portfolio.py): weights, the sum of the parts,
signals from the kernel equal to the engine's, candles, input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from processors.core.indicators import IndicatorEngine
from processors.core.rules import RuleEngine
from processors.core.strategy import DEFAULT_STRATEGY
from spark_jobs.backtest.data import BacktestInputError
from spark_jobs.backtest.portfolio import bars_of, read_ticks, run_portfolio, signals_of
from spark_jobs.backtest.simulate import SimulationConfig, simulate

START_US = 1_704_067_200_000_000


def _ticks(points=3_000, seed=2):
    rng = np.random.default_rng(seed)
    frames = []
    for symbol, level in (("BTC-USD", 40_000.0), ("ETH-USD", 2_500.0)):
        prices = np.round(level * np.exp(np.cumsum(rng.normal(0, 2e-3, points))), 2)
        frames.append(pd.DataFrame({"ts_us": START_US + np.arange(points) * 60_000_000, "symbol": symbol,
                                    "price": prices, "volume": 1.0}))
    return pd.concat(frames, ignore_index=True)


def test_signals_from_the_kernel_equal_the_rule_engine_on_ticks():
    ticks = _ticks()
    bars = bars_of(ticks, "BTC-USD", "tick")
    ours = signals_of(bars, DEFAULT_STRATEGY, ("ema_cross", "rsi_reversal"))
    spec = DEFAULT_STRATEGY.indicators.spec()
    engine = IndicatorEngine(spec)
    state = engine.new_state()
    rules = RuleEngine(DEFAULT_STRATEGY.rules.spec(), engine.names)
    rule_state = rules.new_state()
    expected = []
    for price, volume, moment in zip(bars.close, bars.volume, bars.times, strict=True):
        fired = rules.evaluate(rule_state, engine.update(state, float(price), float(volume), int(moment // 86_400_000_000)),
                               float(price))
        sides = {side for rule, side in fired if rule in ("ema_cross", "rsi_reversal")}
        expected.append(0 if len(sides) != 1 else (1 if "BUY" in sides else -1))
    assert ours.tolist() == expected


def test_the_portfolio_is_the_weighted_sum_of_its_instruments():
    ticks = _ticks()
    config = SimulationConfig(fee=0.001, initial_capital=1_000.0)
    result = run_portfolio(ticks, [], "5m", config, weights={"BTC-USD": 3, "ETH-USD": 1})
    assert [(i.symbol, i.weight) for i in result.instruments] == [("BTC-USD", 0.75), ("ETH-USD", 0.25)]
    for item in result.instruments:
        alone = simulate(item.bars.open, item.bars.high, item.bars.low, item.bars.close, item.signal,
                         SimulationConfig(fee=0.001, initial_capital=1_000.0 * item.weight))
        assert np.array_equal(alone.equity, item.simulation.equity)
    assert result.equity[-1] == pytest.approx(sum(i.simulation.final_equity for i in result.instruments), rel=1e-12)
    assert result.metrics["trades"] == sum(i.simulation.trade_count for i in result.instruments)
    # buy-and-hold: one trade per instrument, bought at the second bar's open, sold at the last close
    for item in result.instruments:
        first, last = item.bars.open[1], item.bars.close[-1]
        factor = (1 / (first * 1.001)) * last * 0.999
        assert item.hold.final_equity == pytest.approx(1_000.0 * item.weight * factor, rel=1e-12)


def test_candles_are_epoch_aligned_first_max_min_last():
    ticks = _ticks(points=12)
    bars = bars_of(ticks, "ETH-USD", "5m")
    prices = ticks[ticks["symbol"] == "ETH-USD"]["price"].to_numpy()
    assert len(bars.close) == 3  # 00:00–00:05, 00:05–00:10, 00:10–00:12
    assert (bars.open[0], bars.high[0], bars.low[0], bars.close[0]) == (
        prices[0], prices[:5].max(), prices[:5].min(), prices[4])
    assert bars.times[0] == START_US + 300_000_000  # a candle is known at its close


def test_bad_inputs_are_reported(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,symbol,price\n2024-01-01T00:00:00Z,BTC-USD,abc\n")
    with pytest.raises(BacktestInputError, match="without a positive price"):
        read_ticks(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("timestamp,price\n2024-01-01T00:00:00Z,1\n")
    with pytest.raises(BacktestInputError, match="missing columns"):
        read_ticks(missing)
    with pytest.raises(BacktestInputError, match="no ticks for"):
        run_portfolio(_ticks(), ["DOGE-USD"], "tick", SimulationConfig())
    with pytest.raises(BacktestInputError, match="weights for symbols not in the input"):
        run_portfolio(_ticks(), [], "tick", SimulationConfig(), weights={"XRP-USD": 1.0})


def test_a_ticks_file_with_venues_backtests_each_venue_alone(tmp_path):
    ticks = _ticks(points=400)
    path = tmp_path / "ticks.csv"
    frame = pd.concat([ticks.assign(venue="coinbase"), ticks.assign(venue="Kraken", price=ticks["price"] * 1.01)])
    frame.assign(timestamp=frame["ts_us"] // 1000).drop(columns="ts_us").to_csv(path, index=False)
    config = SimulationConfig(fee=0.0, slippage=0.0)
    both = run_portfolio(read_ticks(path), ["BTC-USD"], "tick", config)
    assert [i.symbol for i in both.instruments] == ["BTC-USD@coinbase", "BTC-USD@kraken"]
    assert all(len(i.bars.close) == 400 for i in both.instruments)
    alone = run_portfolio(ticks, ["BTC-USD"], "tick", config)
    assert np.array_equal(both.instruments[0].signal, alone.instruments[0].signal)
    with pytest.raises(BacktestInputError, match="BTC-USD@binance"):
        run_portfolio(read_ticks(path), ["BTC-USD@binance"], "tick", config)


def test_timestamps_as_text_epoch_ms_or_a_parquet_timestamp_column_read_alike(tmp_path):
    # A Parquet file's natural timestamp column (tz-aware or naive, any unit) was refused as a
    # "bad timestamp" before (found by bench/bench_backtest.py).
    iso = ["2024-01-01T00:00:00Z", "2024-01-01T00:00:01.5Z"]
    expected = [1_704_067_200_000_000, 1_704_067_201_500_000]
    stamps = pd.to_datetime(pd.Series(iso), utc=True, format="ISO8601")
    frames = {
        "text.csv": pd.DataFrame({"timestamp": iso}),
        "ms.csv": pd.DataFrame({"timestamp": [1_704_067_200_000, 1_704_067_201_500]}),
        "aware.parquet": pd.DataFrame({"timestamp": stamps}),
        "naive.parquet": pd.DataFrame({"timestamp": stamps.dt.tz_localize(None).astype("datetime64[us]")}),
    }
    for name, frame in frames.items():
        path = tmp_path / name
        frame = frame.assign(symbol="btc-usd", price=[100.0, 101.0])
        frame.to_parquet(path, index=False) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
        assert read_ticks(path)["ts_us"].tolist() == expected, name
