"""The backtest over backfill-shaped Parquet: deterministic CSV/PNG/metrics, input errors, the CLI.

The datasets here are written in the exact layout of ``stockstream backfill`` (hive folders
``symbol=…/date=…``, the same column names) by pyarrow, so no Spark is needed; the Spark
tests run the backtest on real backfill output.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from spark_jobs.backtest.data import BacktestInputError
from spark_jobs.backtest.engine import BacktestConfig
from spark_jobs.backtest.run import TRADE_COLUMNS, BacktestRequest, run
from stockstream.cli import app

START = datetime(2024, 6, 1, 22, 0, tzinfo=UTC)


def _write(root, kind, rows):
    table = pa.Table.from_pylist(rows)
    ds.write_dataset(table, root / kind, format="parquet", partitioning=["symbol", "date"],
                     partitioning_flavor="hive")


def _backfill_output(root, symbols=("BTC-USD", "ETH-USD"), points=240):
    indicators, signals = [], []
    for number, symbol in enumerate(symbols):
        for i in range(points):
            moment = START + timedelta(minutes=i)
            price = 100 + 10 * math.sin(i / (9 + number))
            row = {"symbol": symbol, "date": moment.date().isoformat(), "timeframe": "tick", "price": price,
                   "ts_event": moment, "partition": number, "offset": i, "seq": 0}
            indicators.append(row)
            if i % 15 == 7:
                side = "BUY" if (i // 15) % 2 == 0 else "SELL"
                rule = "ema_cross" if i % 2 else "rsi_reversal"
                signals.append({**row, "seq": 1, "side": side, "rule": rule, "signal_id": f"{symbol}{i:030d}"})
    _write(root, "indicators", indicators)
    _write(root, "signals", signals)
    return root


def test_backtest_is_deterministic_and_writes_trades_and_a_picture(tmp_path):
    source = _backfill_output(tmp_path / "backfill")
    outputs = []
    for attempt in ("a", "b"):
        request = BacktestRequest(input=source, config=BacktestConfig(fee_rate=0.001, slippage_rate=0.0002),
                                  trades_csv=tmp_path / attempt / "trades.csv",
                                  equity_png=tmp_path / attempt / "equity.png")
        outcomes = run(request)
        outputs.append((outcomes, (tmp_path / attempt / "trades.csv").read_bytes(),
                        (tmp_path / attempt / "equity.png").read_bytes()))
    (first, csv_a, png_a), (second, csv_b, png_b) = outputs
    assert [o.result for o in first] == [o.result for o in second]
    assert csv_a == csv_b and png_a == png_b
    assert png_a.startswith(b"\x89PNG") and len(png_a) > 10_000
    rows = list(csv.DictReader(csv_a.decode().splitlines()))
    assert tuple(rows[0].keys()) == TRADE_COLUMNS
    assert {row["symbol"] for row in rows} == {"BTC-USD", "ETH-USD"}
    by_symbol = {o.symbol: o for o in first}
    assert len([r for r in rows if r["symbol"] == "BTC-USD"]) == by_symbol["BTC-USD"].result.metrics.trades > 0
    assert by_symbol["BTC-USD"].prices == 240 and by_symbol["BTC-USD"].signals == 16


def test_only_the_chosen_rules_trade(tmp_path):
    source = _backfill_output(tmp_path / "backfill", symbols=("BTC-USD",))
    every = run(BacktestRequest(input=source, trades_csv=None, equity_png=None))[0]
    one = run(BacktestRequest(input=source, rules=("ema_cross",), trades_csv=None, equity_png=None))[0]
    assert one.signals == 8 < every.signals == 16
    assert {t.entry_rule for t in one.result.trades} <= {"ema_cross"}


def test_missing_input_symbols_and_rules_are_reported(tmp_path):
    source = _backfill_output(tmp_path / "backfill", symbols=("BTC-USD",))
    with pytest.raises(BacktestInputError, match="does not exist"):
        run(BacktestRequest(input=tmp_path / "nowhere"))
    with pytest.raises(BacktestInputError, match="no backfill output for"):
        run(BacktestRequest(input=source, symbols=("DOGE-USD",)))
    with pytest.raises(BacktestInputError, match="unknown rules"):
        run(BacktestRequest(input=source, rules=("moon",)))
    with pytest.raises(BacktestInputError, match="no 1m prices"):
        run(BacktestRequest(input=source, timeframe="1m", trades_csv=None, equity_png=None))


def test_backtest_command_prints_metrics_against_buy_and_hold(tmp_path):
    source = _backfill_output(tmp_path / "backfill")
    result = CliRunner().invoke(app, [
        "backtest", "--input", str(source), "--symbols", "ETH-USD", "--mode", "long-short", "--fee", "0.0005",
        "--slippage", "0.0001", "--trades", str(tmp_path / "t.csv"), "--plot", str(tmp_path / "e.png"), "--json",
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert set(report) == {"portfolio", "ETH-USD"}  # the portfolio (here: the one instrument) and the instrument
    assert report["ETH-USD"]["strategy"]["trades"] > 0
    assert report["ETH-USD"]["buy_and_hold"]["trades"] == 1
    assert (tmp_path / "t.csv").exists() and (tmp_path / "e.png").exists()


def test_backtest_command_refuses_unclear_input(tmp_path):
    runner = CliRunner()
    neither = runner.invoke(app, ["backtest"])
    both = runner.invoke(app, ["backtest", "--input", str(tmp_path), "--from-offset", "5"])
    bad_timeframe = runner.invoke(app, ["backtest", "--input", str(tmp_path), "--timeframe", "7x"])
    assert neither.exit_code == both.exit_code == bad_timeframe.exit_code == 2
    assert "--input" in neither.output and "not both" in both.output


def test_two_venues_of_one_symbol_are_two_backtests(tmp_path):
    """Output with a venue column: each venue's series is simulated alone, never one mixed price path."""
    plain = _backfill_output(tmp_path / "plain", symbols=("BTC-USD", "ETH-USD"))
    source = tmp_path / "backfill"
    for kind in ("indicators", "signals"):  # the same rows as two venues' rows, kraken 1.5× the price
        rows = ds.dataset(plain / kind, format="parquet", partitioning="hive").to_table().to_pylist()
        _write(source, kind, [{**row, "venue": venue, "price": row["price"] * scale}
                              for venue, scale in (("coinbase", 1.0), ("kraken", 1.5)) for row in rows])
    every = run(BacktestRequest(input=source, trades_csv=None, equity_png=None))
    assert [o.symbol for o in every] == ["BTC-USD@coinbase", "BTC-USD@kraken", "ETH-USD@coinbase", "ETH-USD@kraken"]
    assert all(o.prices == 240 and o.signals == 16 for o in every)
    btc = run(BacktestRequest(input=source, symbols=("BTC-USD",), trades_csv=None, equity_png=None))
    assert [o.symbol for o in btc] == ["BTC-USD@coinbase", "BTC-USD@kraken"]
    one = run(BacktestRequest(input=source, symbols=("ETH-USD@kraken",), trades_csv=None, equity_png=None))
    assert [o.symbol for o in one] == ["ETH-USD@kraken"] and one[0].result == every[3].result
    with pytest.raises(BacktestInputError, match="BTC-USD@binance"):
        run(BacktestRequest(input=source, symbols=("BTC-USD@binance",)))
