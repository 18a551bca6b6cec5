"""``stockstream indicators --strategy FILE [--outcomes FILE]`` with rule-language strategies (issue 15, "Batch contract").

The real console script on a simulated series of 12 000 ticks (two symbols, one UTC day, strictly
increasing event times): the strategies' indicator columns against TA-Lib and pandas, the ``signals``
column against the pipeline step run in this process (the one engine), the four built-in rules written
as ``[strategies]`` against the default run, the default run against its output before strategies
(a pinned digest), ``--outcomes`` against pandas on the scorecard definition, and bad files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import random
import re
import subprocess
import tomllib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from processors.core.pipeline import SymbolProcessor
from processors.core.strategy import load_strategy
from schemas.events import Lineage, Tick
from schemas.instruments import Instrument
from stockstream.batch import OUTCOME_COLUMNS, candle_timeframes
from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[3]
START = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)
GRACE_US = 5_000_000
FIXED_OFF = """
[rules]
rsi_reversal = { enabled = false }
ema_cross = { enabled = false }
macd_cross = { enabled = false }
seed_rsi_ema = { enabled = false }
"""
# Several indicators, multi-line ones among them, an @1m operand, and a strategy on 1m candles.
MULTI = """
[strategies.momentum]
buy = "crosses_above(macd(12, 26, 9).line, macd(12, 26, 9).signal) and stoch(14, 3, 3).k < 80 and close > sma(50)@1m"
sell = "close > bb(20, 2).upper or (atr(14) > 0.4 and stoch(14, 3, 3).d > 70) or rsi(14) > 75"

[strategies.minute_trend]
timeframe = "1m"
buy = "crosses_above(ema(9), ema(21))"
sell = "crosses_below(ema(9), ema(21)) or close < donchian(20).lower[1]"
"""
# The four fixed rules as the built-in strategies spell them (docs/examples/strategies.toml).
BUILTINS = FIXED_OFF + """
[strategies.rsi_reversal]
params = { period = 14, oversold = 30, overbought = 70 }
buy = "rsi(period) >= oversold"
sell = "rsi(period) <= overbought"

[strategies.ema_cross]
params = { fast = 12, slow = 26 }
buy = "ema(fast) > ema(slow)"
sell = "ema(fast) < ema(slow)"

[strategies.macd_cross]
buy = "macd(12, 26, 9).line > macd(12, 26, 9).signal"
sell = "macd(12, 26, 9).line < macd(12, 26, 9).signal"

[strategies.seed_rsi_ema]
buy = "rsi(14) < 30 and price < ema(12)"
sell = "rsi(14) > 70 and price > ema(12)"
"""
# sha256 of the default output (no --strategy) of simulated_csv() written by main at cc00f20, before the
# strategy columns and --outcomes existed: the default output must not change.
DEFAULT_OUTPUT_SHA256 = "81f23dfc36eb5b6c67ff806a45beedc9b953061ab547240a05c5d5d7f5bb2ac0"


def simulated_csv(count: int = 12_000, seed: int = 15) -> str:
    """Two symbols' random walks, interleaved, with strictly increasing millisecond times (one UTC day)."""
    rng = random.Random(seed)  # noqa: S311 - test data
    prices = {"BTC-USD": 100.0, "ETH-USD": 40.0}
    moment = START
    lines = ["timestamp,symbol,price,volume"]
    for _ in range(count):
        moment += timedelta(milliseconds=rng.randint(100, 1_500))
        symbol = "BTC-USD" if rng.random() < 0.6 else "ETH-USD"
        prices[symbol] *= math.exp(rng.gauss(0.0, 2e-3))
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        lines.append(f"{stamp},{symbol},{prices[symbol]:.6f},{rng.lognormvariate(-1, 1):.6f}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def ticks_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("series") / "ticks.csv"
    path.write_text(simulated_csv())
    return path


def indicators(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STOCKSTREAM, "indicators", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def numbers(column: pd.Series) -> np.ndarray:
    return np.array([float(value) if value else np.nan for value in column])


def strategy_file(tmp_path: Path, text: str, name: str = "strategies.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(ticks_csv: Path, tmp_path: Path, *args: str) -> pd.DataFrame:
    output = tmp_path / "out.csv"
    result = indicators("--input", str(ticks_csv), "--output", str(output), *args)
    assert result.returncode == 0, result.stderr
    return read(output)


def test_the_columns_of_every_indicator_the_strategies_use(ticks_csv: Path, tmp_path: Path) -> None:
    got = run(ticks_csv, tmp_path, "--strategy", str(strategy_file(tmp_path, FIXED_OFF + MULTI)))
    fixed = ["sma_20", "sma_50", "ema_12", "ema_26", "rsi_14", "macd", "macd_signal", "macd_hist", "bb_upper",
             "bb_middle", "bb_lower", "vwap"]
    # Tick values first (rsi_14 is the fixed column already), then the 1m candles' (named with _1m).
    assert list(got.columns) == ["timestamp", "symbol", "price", "volume", "venue", *fixed,
                                 "macd_12_26_9_line", "macd_12_26_9_signal", "stoch_14_3_3_k", "bb_20_2_upper",
                                 "atr_14", "stoch_14_3_3_d",
                                 "sma_50_1m", "ema_9_1m", "ema_21_1m", "donchian_20_lower_1m", "signals"]
    for symbol in ("BTC-USD", "ETH-USD"):
        mine = got[got["symbol"] == symbol]
        price = numbers(mine["price"])
        # TA-Lib's MACD function seeds the fast EMA in step with the slow one; the definition (docs/core.md)
        # seeds each EMA with its own SMA: EMA12 - EMA26, its signal the EMA9 of the defined values.
        line = talib.EMA(price, 12) - talib.EMA(price, 26)
        signal = np.full_like(line, np.nan)
        signal[25:] = talib.EMA(line[25:], 9)
        slow_k, slow_d = talib.STOCH(price, price, price, fastk_period=14, slowk_period=3, slowk_matype=0,
                                     slowd_period=3, slowd_matype=0)
        references = {"macd_12_26_9_line": line, "macd_12_26_9_signal": signal, "stoch_14_3_3_k": slow_k,
                      "stoch_14_3_3_d": slow_d, "bb_20_2_upper": talib.BBANDS(price, 20, 2, 2, 0)[0],
                      "atr_14": talib.ATR(price, price, price, 14)}  # a tick is a bar with high = low = close
        for name, reference in references.items():
            ours = numbers(mine[name])
            defined = ~np.isnan(reference)
            assert defined.sum() > 1_000, name
            assert not np.isnan(ours[defined]).any(), name
            np.testing.assert_allclose(ours[defined], reference[defined], rtol=1e-9, atol=1e-9, err_msg=name)
        # sma(50)@1m: the SMA of the last 50 closed 1m candles' closes; a window [t, t+1m) closes at the first
        # tick at or after t + 1m + grace (docs/core.md, "Timeframes"), so each tick sees the candles closed by then.
        times = pd.to_datetime(mine["timestamp"], format="ISO8601").astype("int64").to_numpy() // 1_000
        minute = 60_000_000
        closes = pd.Series(price).groupby(times - times % minute).last()
        sma = closes.rolling(50).mean()
        ends = closes.index.to_numpy() + minute
        seen = np.searchsorted(ends + GRACE_US, times, side="right")  # candles closed at each tick
        reference = np.array([sma.iloc[n - 1] if n else np.nan for n in seen])
        ours = numbers(mine["sma_50_1m"])
        assert np.array_equal(np.isnan(ours), np.isnan(reference))
        assert (~np.isnan(reference)).sum() > 1_000
        np.testing.assert_allclose(ours[~np.isnan(ours)], reference[~np.isnan(reference)], rtol=1e-9)
    assert got["signals"].str.contains("momentum:BUY").sum() > 10
    assert got["signals"].str.contains("momentum:SELL").sum() > 10
    assert not got["signals"].str.contains("minute_trend").any()  # a 1m strategy: not a tick signal


def test_the_signals_column_is_what_the_pipeline_step_emits(ticks_csv: Path, tmp_path: Path) -> None:
    path = strategy_file(tmp_path, MULTI)  # the fixed rules stay on: their signals come first
    got = run(ticks_csv, tmp_path, "--strategy", str(path))
    strategy = load_strategy(path)
    timeframes = candle_timeframes(strategy, "tick")
    assert timeframes == ("1m",)
    processors: dict[str, SymbolProcessor] = {}
    expected = []
    for offset, row in enumerate(csv.DictReader(io.StringIO(ticks_csv.read_text()))):
        moment = datetime.fromisoformat(row["timestamp"])
        tick = Tick(symbol=row["symbol"], venue="file", price=float(row["price"]), volume=float(row["volume"]),
                    ts_event=moment, ts_init=moment, source="file", source_id=str(offset + 2))
        processor = processors.get(tick.symbol)
        if processor is None:
            config = strategy.pipeline_config(tick.symbol, candle_timeframes=timeframes, grace_ms=5_000)
            processor = processors[tick.symbol] = SymbolProcessor(config, Instrument(tick.symbol, "file"))
        out = processor.process(tick, Lineage(topic=ticks_csv.name, partition=-1, offset=offset))
        expected.append(";".join(f"{s.strategy}:{s.side}" for s in out.signals if s.timeframe == "tick"))
    assert len(got) == len(expected) >= 10_000
    assert list(got["signals"]) == expected
    fired = {part.split(":")[0] for cell in expected for part in cell.split(";") if part}
    assert fired == {"rsi_reversal", "ema_cross", "macd_cross", "seed_rsi_ema", "momentum"}


def test_the_builtin_strategies_write_what_the_default_run_writes(ticks_csv: Path, tmp_path: Path) -> None:
    default = tmp_path / "default.csv"
    result = indicators("--input", str(ticks_csv), "--output", str(default))
    assert result.returncode == 0, result.stderr
    # Without --strategy the output is byte for byte what it was before strategies came to the batch.
    assert hashlib.sha256(default.read_bytes()).hexdigest() == DEFAULT_OUTPUT_SHA256
    written = run(ticks_csv, tmp_path, "--strategy", str(strategy_file(tmp_path, BUILTINS)))
    before = read(default)
    assert (before["signals"] != "").sum() > 1_000
    # rsi_14 and ema_12/ema_26 are the fixed columns (same names, same values); the MACD lines have the
    # language's names beside the fixed macd/macd_signal, and equal them to the last bit.
    added = ["macd_12_26_9_line", "macd_12_26_9_signal"]
    assert list(written.columns) == [*before.columns[:-1], *added, "signals"]
    assert list(written["macd_12_26_9_line"]) == list(before["macd"])
    assert list(written["macd_12_26_9_signal"]) == list(before["macd_signal"])
    pd.testing.assert_frame_equal(written.drop(columns=added), before)


def test_outcomes_equal_pandas_on_the_scorecard_definition(ticks_csv: Path, tmp_path: Path) -> None:
    output, outcomes = tmp_path / "out.csv", tmp_path / "outcomes.csv"
    result = indicators("--input", str(ticks_csv), "--output", str(output), "--outcomes", str(outcomes),
                        "--strategy", str(strategy_file(tmp_path, MULTI)), "--horizons", "30s,5m,1h",
                        "--fee", "0.001")
    assert result.returncode == 0, result.stderr
    assert outcomes.read_text().splitlines()[0] == ",".join(OUTCOME_COLUMNS)
    got = read(outcomes)
    rows = read(output)
    rows["ts"] = pd.to_datetime(rows["timestamp"], format="ISO8601").astype("int64") // 1_000
    rows["p"] = rows["price"].astype(float)
    rows["offset"] = range(len(rows))
    horizons = {"30s": 30_000_000, "5m": 300_000_000, "1h": 3_600_000_000}

    # Tick signals (the signals column) → the first later tick of the symbol at or after signal time + h.
    expected = []
    for symbol, series in rows.groupby("symbol"):
        ts, price, offsets = series["ts"].to_numpy(), series["p"].to_numpy(), series["offset"].to_numpy()
        for position, cell in enumerate(series["signals"]):
            for part in filter(None, cell.split(";")):
                strategy, side = part.split(":")
                for label, length in horizons.items():
                    later = np.flatnonzero((offsets > offsets[position]) & (ts >= ts[position] + length))
                    if not len(later):
                        continue
                    first = later[0]
                    gross = (1.0 if side == "BUY" else -1.0) * (price[first] / price[position] - 1.0)
                    expected.append({"symbol": symbol, "strategy": strategy, "side": side, "horizon": label,
                                     "signal_ts": ts[position], "signal_price": price[position],
                                     "ts_event": ts[first], "price": price[first], "return_gross": gross,
                                     "return_net": gross - 0.001})
    want = pd.DataFrame(expected)
    ticks = got[got["timeframe"] == "tick"].copy()
    mine = pd.DataFrame({
        "symbol": ticks["symbol"], "strategy": ticks["strategy"], "side": ticks["side"], "horizon": ticks["horizon"],
        "signal_ts": pd.to_datetime(ticks["signal_ts"], format="ISO8601").astype("int64") // 1_000,
        "signal_price": ticks["signal_price"].astype(float),
        "ts_event": pd.to_datetime(ticks["ts_event"], format="ISO8601").astype("int64") // 1_000,
        "price": ticks["price"].astype(float), "return_gross": ticks["return_gross"].astype(float),
        "return_net": ticks["return_net"].astype(float)})
    key = ["symbol", "strategy", "side", "horizon", "signal_ts"]
    assert len(want) > 1_000 and set(want["strategy"]) >= {"momentum", "rsi_reversal"}
    pd.testing.assert_frame_equal(mine.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True), check_exact=True, check_dtype=False)
    assert (ticks["fee"].astype(float) == 0.001).all()
    assert got["outcome_id"].is_unique and (got["strategy_version"].str.len() == 16).all()

    # 1m signals (minute_trend and the fixed rules on 1m): signal time is the candle's close, its price the
    # close (the last tick before it); emitted with the tick that closed the window (the first at or after
    # close + grace), so the outcome is the first tick after that one at or after close + h.
    candles = got[got["timeframe"] == "1m"]
    assert set(candles["strategy"]) >= {"minute_trend"} and len(candles) > 100
    by_symbol = {symbol: series for symbol, series in rows.groupby("symbol")}
    for outcome in candles.itertuples():
        series = by_symbol[outcome.symbol]
        ts, price = series["ts"].to_numpy(), series["p"].to_numpy()
        close = pd.Timestamp(outcome.signal_ts).value // 1_000
        closer = np.searchsorted(ts, close + GRACE_US)
        first = closer + 1 + np.searchsorted(ts[closer + 1:], close + horizons[outcome.horizon])
        assert float(outcome.signal_price) == price[np.searchsorted(ts, close) - 1]
        assert (pd.Timestamp(outcome.ts_event).value // 1_000, float(outcome.price)) == (ts[first], price[first])
        direction = 1.0 if outcome.side == "BUY" else -1.0
        assert float(outcome.return_gross) == direction * (price[first] / float(outcome.signal_price) - 1.0)


def test_candle_output_keeps_its_columns_and_its_strategies_are_scored(ticks_csv: Path, tmp_path: Path) -> None:
    output, outcomes = tmp_path / "candles.csv", tmp_path / "outcomes.csv"
    path = strategy_file(tmp_path, FIXED_OFF + MULTI)
    result = indicators("--input", str(ticks_csv), "--output", str(output), "--timeframe", "1m", "--strategy",
                        str(path), "--outcomes", str(outcomes))
    assert result.returncode == 0, result.stderr
    candles = read(output)
    assert list(candles.columns)[-1] == "signals" and "ema_9" not in candles.columns
    assert set(candles["timeframe"]) == {"1m"}
    assert candles["signals"].str.contains("minute_trend").sum() > 10
    scored = read(outcomes)
    assert set(scored["timeframe"]) == {"tick", "1m"} and set(scored["horizon"]) == {"1m", "5m", "1h"}
    fired = sum(cell.count("minute_trend") for cell in candles["signals"])
    assert (scored[scored["horizon"] == "1m"]["strategy"] == "minute_trend").sum() in (fired, fired - 1, fired - 2)


@pytest.mark.parametrize(("text", "problem"), [
    ('[strategies.x]\nbuy = "emma(9) > 3"\n', "unknown"),
    ('[strategies.x]\nbuy = "ema(9) >"\n', "column 9"),
    ('[strategies.x]\nbuy = "close > sma(20)@7q"\n', "timeframe"),
    ('[strategies.x]\nbuy = "close > sma(20000)"\n', "10000"),
    ('[strategies.rsi_reversal]\nbuy = "rsi(14) < 30"\n', "rename the strategy or disable rules.rsi_reversal"),
])
def test_a_bad_strategy_file_is_refused_naming_the_file_and_nothing_is_written(
        ticks_csv: Path, tmp_path: Path, text: str, problem: str) -> None:
    path = strategy_file(tmp_path, text, "bad.toml")
    output, outcomes = tmp_path / "out.csv", tmp_path / "outcomes.csv"
    result = indicators("--input", str(ticks_csv), "--output", str(output), "--outcomes", str(outcomes),
                        "--strategy", str(path))
    assert result.returncode == 2, result.stderr
    assert str(path) in result.stderr and problem in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.toml"]


@pytest.mark.parametrize(("args", "message"), [
    (["--outcomes", "x.csv", "--horizons", ""], "at least one horizon"),
    (["--horizons", "5x"], "--horizons"),
    (["--horizons", "1m,60s"], "repeats"),
    (["--output", "-", "--outcomes", "-"], "both be stdout"),
])
def test_outcome_options_are_checked(ticks_csv: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = indicators("--input", str(ticks_csv), "--output", str(tmp_path / "out.csv"), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "out.csv").exists()


def test_signals_of_a_symbol_limited_strategy_appear_on_that_symbol_only(ticks_csv: Path, tmp_path: Path) -> None:
    text = FIXED_OFF + '[strategies.btc_only]\nsymbols = ["BTC-USD"]\nbuy = "wma(10) > ema(30)"\nsell = "wma(10) < ema(30)"\n'
    got = run(ticks_csv, tmp_path, "--strategy", str(strategy_file(tmp_path, text)))
    assert list(got.columns)[-3:] == ["wma_10", "ema_30", "signals"]
    eth = got[got["symbol"] == "ETH-USD"]
    assert (eth["wma_10"] == "").all() and (eth["signals"] == "").all()
    btc = got[got["symbol"] == "BTC-USD"]
    assert btc["signals"].str.contains("btc_only").sum() > 10
    counts = defaultdict(int)
    for cell in btc["signals"]:
        for part in filter(None, cell.split(";")):
            counts[part] += 1
    assert abs(counts["btc_only:BUY"] - counts["btc_only:SELL"]) <= 1  # transitions alternate


def test_the_documented_example_is_the_example_file_and_writes_the_documented_columns(tmp_path: Path) -> None:
    """docs/core.md ("Batch command") shows docs/examples/strategies-batch.toml and the header it gives."""
    text = (ROOT / "docs" / "core.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n  # docs/examples/strategies-batch.toml\n(.*?)  ```", text, re.DOTALL)
    assert block is not None
    shown = tomllib.loads("\n".join(line.removeprefix("  ") for line in block.group(1).splitlines()))
    example = ROOT / "docs" / "examples" / "strategies-batch.toml"
    assert shown == tomllib.loads(example.read_text(encoding="utf-8"))
    documented = re.search(r"\$ head -1 out.csv\n  (timestamp,.*)\n", text)
    assert documented is not None
    got = run(ROOT / "tests" / "data" / "ticks_sample.csv", tmp_path, "--strategy", str(example))
    assert re.fullmatch(re.escape(documented.group(1)).replace("…", ".*"), ",".join(got.columns))
    assert got["signals"].str.contains("momentum:").sum() > 10


def test_a_strategy_column_named_like_a_fixed_one_fills_it_where_an_override_lacks_it(
        ticks_csv: Path, tmp_path: Path) -> None:
    text = ('[symbols."ETH-USD".indicators]\nrsi = [7, 14]\n'
            '[strategies.fast_rsi]\nbuy = "rsi(7) < 20"\nsell = "rsi(7) > 80"\n')
    got = run(ticks_csv, tmp_path, "--strategy", str(strategy_file(tmp_path, text)))
    assert list(got.columns).count("rsi_7") == 1 and list(got.columns)[-2:] == ["rsi_7", "signals"]
    for symbol in ("BTC-USD", "ETH-USD"):  # BTC-USD: the strategy's value; ETH-USD: the fixed indicator's
        mine = got[got["symbol"] == symbol]
        reference = talib.RSI(numbers(mine["price"]), 7)
        ours = numbers(mine["rsi_7"])
        assert np.array_equal(np.isnan(ours), np.isnan(reference)), symbol
        np.testing.assert_allclose(ours[~np.isnan(ours)], reference[~np.isnan(reference)], rtol=1e-9, atol=1e-9)
