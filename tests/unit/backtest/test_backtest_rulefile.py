"""``stockstream backtest --strategy FILE`` on a rule-language file: the streaming engine's signals, next-bar fills.

The reference is built independently of the vectorized path: the ticks are folded into candles and
fed to :class:`~processors.core.strategies.engine.CompiledStrategies` one closed candle at a time (as
a processor would), its BUY/SELL become +1/−1 per bar, and :func:`spark_jobs.backtest.simulate.simulate`
trades them. The CLI's JSON must give the same trade count and final equity, to the bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from processors.core.strategies.engine import ClosedCandle, CompiledStrategies
from processors.core.strategies.file import load_strategies
from spark_jobs.backtest.rulefile import RuleFile, RuleFileError, bars_from_ticks, rule_signals
from spark_jobs.backtest.simulate import SimulationConfig, simulate
from stockstream.cli import app

STRATEGIES = """
[strategies.trend]
timeframe = "5m"
params = { fast = 5, slow = 20 }
buy = "crosses_above(ema(fast), ema(slow)) and rsi(14) < 75"
sell = "crosses_below(ema(fast), ema(slow))"

[strategies.dip]
params = { level = 30 }
buy = "rsi(14) < level and close > sma(5)@5m"
sell = "rsi(14) > 70"
"""
START_MS = 1_704_067_200_000


def _ticks(path: Path, count: int = 6_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prices = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 1.5e-3, count))), 2)
    times_ms = START_MS + np.cumsum(rng.integers(5_000, 40_000, count))
    volumes = np.round(rng.random(count) * 2, 3)
    lines = ["timestamp,symbol,price,volume"]
    lines += [f"{t},BTC-USD,{p:.2f},{v}" for t, p, v in zip(times_ms, prices, volumes, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return times_ms * 1000, prices, volumes


def _engine_signals(path: Path, times: np.ndarray, prices: np.ndarray, volumes: np.ndarray,
                    overrides: dict[str, dict[str, int | float]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The streaming engine over candles closed one at a time → (+1/−1/0 per 5m bar, the bars' opens)."""
    definitions = [d for d in load_strategies(path, candle_timeframes=("5m",), overrides=overrides)
                   if d.timeframe == "5m"]
    compiled = CompiledStrategies(definitions, candle_timeframes=("5m",))
    state = compiled.new_state("BTC-USD")
    bars = bars_from_ticks(times, prices, volumes, "5m")
    signal = np.zeros(len(bars.close), dtype=np.int8)
    for index in range(len(bars.close)):
        candle = ClosedCandle("5m", int(bars.ts_open[index]), int(bars.ts_close[index]), float(bars.open[index]),
                              float(bars.high[index]), float(bars.low[index]), float(bars.close[index]),
                              float(bars.volume[index]))
        total = sum(1 if fired.side == "BUY" else -1 for fired in compiled.on_candle(state, candle))
        signal[index] = np.sign(total)
    return signal, bars.open


def _cli(tmp_path: Path, ticks: Path, strategy: Path, *extra: str) -> dict:
    result = CliRunner().invoke(app, [
        "backtest", "--input", str(ticks), "--strategy", str(strategy), "--timeframe", "5m", "--fee", "0.001",
        "--trades", str(tmp_path / "trades.csv"), "--plot", str(tmp_path / "equity.png"), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_strategy_file_backtest_trades_the_streaming_engines_signals(tmp_path: Path) -> None:
    ticks, strategy = tmp_path / "ticks.csv", tmp_path / "strategies.toml"
    strategy.write_text(STRATEGIES)
    times, prices, volumes = _ticks(ticks)
    report = _cli(tmp_path, ticks, strategy)["BTC-USD"]
    signal, _ = _engine_signals(strategy, times, prices, volumes)
    bars = bars_from_ticks(times, prices, volumes, "5m")
    expected = simulate(bars.open, bars.high, bars.low, bars.close, signal, SimulationConfig(fee=0.001))
    assert (signal != 0).sum() > 4, "the strategy trades"
    assert report["signals"] == int((signal != 0).sum())
    assert report["strategy"]["trades"] == expected.trade_count
    assert report["strategy"]["final_equity"] == expected.final_equity


def test_set_overrides_equal_editing_the_file(tmp_path: Path) -> None:
    ticks, strategy, edited = tmp_path / "ticks.csv", tmp_path / "a.toml", tmp_path / "b.toml"
    strategy.write_text(STRATEGIES)
    edited.write_text(STRATEGIES.replace("fast = 5, slow = 20", "fast = 8, slow = 30"))
    _ticks(ticks)
    overridden = _cli(tmp_path, ticks, strategy, "--set", "trend.fast=8,slow=30")
    assert overridden == _cli(tmp_path, ticks, edited)
    assert overridden != _cli(tmp_path, ticks, strategy)


def test_a_tick_strategy_reading_candles_sees_only_closed_ones(tmp_path: Path) -> None:
    ticks, strategy = tmp_path / "ticks.csv", tmp_path / "s.toml"
    strategy.write_text(STRATEGIES)
    times, prices, volumes = _ticks(ticks, 3_000)
    rule_file = RuleFile.read(strategy)
    assert rule_file is not None
    bars, signal = rule_signals(rule_file.definitions(), "BTC-USD", times, prices, volumes, "tick")
    # the streaming engine, the pipeline's order: a 5m window closes before the tick that closed it
    definitions = [d for d in rule_file.definitions() if d.timeframe == "tick"]
    compiled = CompiledStrategies(definitions, candle_timeframes=("5m",))
    state = compiled.new_state("BTC-USD")
    candles = bars_from_ticks(times, prices, volumes, "5m")
    closed = 0
    expected = np.zeros(len(times), dtype=np.int8)
    for index, (ts, price, volume) in enumerate(zip(times, prices, volumes, strict=True)):
        while closed < len(candles.close) and candles.ts_close[closed] <= ts:
            compiled.on_candle(state, ClosedCandle("5m", int(candles.ts_open[closed]), int(candles.ts_close[closed]),
                                                   float(candles.open[closed]), float(candles.high[closed]),
                                                   float(candles.low[closed]), float(candles.close[closed]),
                                                   float(candles.volume[closed])))
            closed += 1
        total = sum(1 if f.side == "BUY" else -1 for f in compiled.on_tick(state, int(ts), float(price), float(volume)))
        expected[index] = np.sign(total)
    assert len(bars.close) == len(times)
    assert (expected != 0).sum() > 2
    assert np.array_equal(signal, expected)


@pytest.mark.parametrize(("extra", "said"), [
    (["--set", "trend.nope=3"], "no parameter 'trend.nope'"),
    (["--set", "fast"], "expected name=number"),
    (["--timeframe", "1h"], "no strategy runs on 1h"),
    (["--rules", "missing"], "no strategy ['missing']"),
])
def test_bad_requests_exit_2_with_the_reason(tmp_path: Path, extra: list[str], said: str) -> None:
    ticks, strategy = tmp_path / "ticks.csv", tmp_path / "s.toml"
    strategy.write_text(STRATEGIES)
    _ticks(ticks, 500)
    arguments = ["backtest", "--input", str(ticks), "--strategy", str(strategy), "--timeframe", "5m",
                 "--trades", str(tmp_path / "t.csv"), "--plot", str(tmp_path / "p.png")]
    for option in extra:
        if option.startswith("--") and option in arguments:
            position = arguments.index(option)
            del arguments[position : position + 2]
    result = CliRunner().invoke(app, [*arguments, *extra])
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split())


def test_an_invalid_rule_is_a_clear_error(tmp_path: Path) -> None:
    strategy = tmp_path / "s.toml"
    strategy.write_text('[strategies.x]\nbuy = "ema(fast) > 1"\n')
    with pytest.raises(RuleFileError, match="strategies.x.buy"):
        RuleFile.read(strategy)
