"""``stockstream backtest --input FOLDER`` (backfill output) trades with the next-bar model, no look-ahead.

Hand-computed trades on backfill-shaped Parquet (the layout of ``stockstream backfill``, written by
pyarrow): a tick signal fills at the next tick's price, a candle signal at the next candle's open —
never at the signal's own price, which the processor only knew after the fact.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from spark_jobs.backtest.backfilled import run_backfilled
from spark_jobs.backtest.data import BacktestInputError
from spark_jobs.backtest.simulate import SimulationConfig
from stockstream.cli import app

START = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)


def _write(root, kind, rows):
    ds.write_dataset(pa.Table.from_pylist(rows), root / kind, format="parquet", partitioning=["symbol", "date"],
                     partitioning_flavor="hive")


def _row(timeframe, index, price, moment):
    return {"symbol": "BTC-USD", "date": moment.date().isoformat(), "timeframe": timeframe, "price": price,
            "ts_event": moment, "partition": 0, "offset": index, "seq": 0}


def _ticks(root, prices, signals):
    rows = [_row("tick", i, price, START + timedelta(seconds=i)) for i, price in enumerate(prices)]
    _write(root, "indicators", rows)
    _write(root, "signals", [{**rows[i], "seq": 1, "side": side, "rule": "ema_cross", "signal_id": f"s{i}"}
                             for i, side in signals])
    return root


def test_a_tick_signal_fills_at_the_next_ticks_price(tmp_path):
    root = _ticks(tmp_path / "bf", [100.0, 101.0, 102.0, 104.0, 103.0, 99.0], [(1, "BUY"), (3, "SELL")])
    result = run_backfilled(root, [], "tick", SimulationConfig(fee=0.0), ["ema_cross"])
    simulation = result.instruments[0].simulation
    assert simulation.trade_count == 1
    trades = simulation.trades
    assert (trades["entry_price"][0], trades["exit_price"][0]) == (102.0, 103.0)  # not 101 / 104: the signal's own ticks
    assert simulation.final_equity == 103.0 / 102.0


def test_fees_and_signals_of_other_rules(tmp_path):
    root = _ticks(tmp_path / "bf", [100.0, 101.0, 102.0, 104.0, 103.0, 99.0], [(1, "BUY"), (3, "SELL")])
    fee = 0.001
    result = run_backfilled(root, ["BTC-USD"], "tick", SimulationConfig(fee=fee), ["ema_cross"])
    units = 1.0 / (102.0 * (1 + fee))
    assert result.instruments[0].simulation.final_equity == pytest.approx(units * 103.0 * (1 - fee), rel=1e-12)
    assert run_backfilled(root, [], "tick", SimulationConfig(), ["rsi_reversal"]).instruments[0].simulation.trade_count == 0


def test_a_candle_signal_fills_at_the_next_candles_open(tmp_path):
    root = tmp_path / "bf"
    minute = timedelta(minutes=1)
    candles = [(100.0, 101.0, 99.0, 100.5), (100.7, 102.0, 100.1, 101.5), (101.2, 103.0, 101.0, 102.5),
               (102.9, 104.0, 102.0, 103.5), (103.1, 103.6, 101.0, 101.2)]
    snapshots, candle_rows = [], []
    for i, (open_, high, low, close) in enumerate(candles):
        end = START + (i + 1) * minute
        snapshots.append(_row("1m", i, close, end))
        candle_rows.append({**_row("1m", i, close, end), "ts_open": end - minute, "ts_close": end, "open": open_,
                            "high": high, "low": low, "close": close, "volume": 1.0, "trade_count": 3})
    _write(root, "indicators", snapshots)
    _write(root, "candles", candle_rows)
    _write(root, "signals", [{**snapshots[0], "seq": 1, "side": "BUY", "rule": "macd_cross", "signal_id": "b"},
                             {**snapshots[2], "seq": 1, "side": "SELL", "rule": "macd_cross", "signal_id": "s"}])
    simulation = run_backfilled(root, [], "1m", SimulationConfig(fee=0.0), ["macd_cross"]).instruments[0].simulation
    trades = simulation.trades
    assert (trades["entry_price"][0], trades["exit_price"][0]) == (100.7, 102.9)  # the next candles' opens
    assert simulation.final_equity == 102.9 / 100.7
    # the CLI takes the same path
    result = CliRunner().invoke(app, ["backtest", "--input", str(root), "--timeframe", "1m", "--rules", "macd_cross",
                                      "--fee", "0", "--trades", str(tmp_path / "t.csv"), "--plot",
                                      str(tmp_path / "p.png"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["BTC-USD"]["strategy"]["final_equity"] == 102.9 / 100.7


def test_a_candle_without_its_ohlc_row_is_a_clear_error(tmp_path):
    root = tmp_path / "bf"
    snapshot = _row("1m", 0, 100.0, START)
    _write(root, "indicators", [snapshot])
    _write(root, "signals", [{**snapshot, "seq": 1, "side": "BUY", "rule": "ema_cross", "signal_id": "b"}])
    _write(root, "candles", [{**snapshot, "ts_open": START, "ts_close": START + timedelta(minutes=1), "open": 1.0,
                              "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0, "trade_count": 1}])
    with pytest.raises(BacktestInputError, match="no 1m candle closing"):
        run_backfilled(root, [], "1m", SimulationConfig(), ["ema_cross"])
