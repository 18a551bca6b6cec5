"""``stockstream indicators`` on the files people actually have (issue 20): headers recognised by
their shape, common column names, OHLCV bar downloads (yfinance-shaped), and exit 2 with no output
file when nothing could be written."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
import talib

from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.e2e
CLOSES = [42280.0 + 35 * i + (i % 7) * 120 - (i % 3) * 90 for i in range(40)]


def indicators(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STOCKSTREAM, "indicators", *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=cwd, input=stdin)


def read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def bar_rows() -> list[str]:
    """Daily bars as a market-data download writes them (Adj Close included)."""
    rows = []
    for day, close in enumerate(CLOSES):
        open_, high, low = close - 50, close + 300, close - 400
        rows.append(f"2024-01-{day + 1:02d}" if day < 31 else f"2024-02-{day - 30:02d}")
        rows[-1] += f",{open_},{high},{low},{close},{close},{1000 + day}"
    return rows


def test_a_yfinance_download_is_read_as_bars_and_the_close_drives_the_indicators(tmp_path: Path) -> None:
    source = tmp_path / "BTC-USD.csv"
    source.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n" + "\n".join(bar_rows()) + "\n")
    result = indicators("--input", str(source), "--output", str(tmp_path / "out.csv"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "no symbol column: every row is BTC-USD (from the file name; --symbol to choose)\n"
    rows = read(tmp_path / "out.csv")
    assert list(rows[0])[:8] == ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume", "symbol"]
    assert len(rows) == len(CLOSES) and {row["symbol"] for row in rows} == {"BTC-USD"}
    assert [float(row["High"]) for row in rows] == [close + 300 for close in CLOSES]  # each bar written back
    closes = np.array(CLOSES)
    for name, expected in (("sma_20", talib.SMA(closes, 20)), ("ema_12", talib.EMA(closes, 12)),
                           ("rsi_14", talib.RSI(closes, 14))):
        got = [float(row[name]) if row[name] else np.nan for row in rows]
        np.testing.assert_allclose(got, expected, rtol=1e-9, equal_nan=True, err_msg=name)


def test_yfinance_three_row_header_names_its_ticker(tmp_path: Path) -> None:
    source = tmp_path / "download.csv"
    header = "Price,Close,High,Low,Open,Volume\nTicker,ETH-USD,ETH-USD,ETH-USD,ETH-USD,ETH-USD\nDate,,,,,\n"
    body = "".join(f"2024-01-{day + 1:02d},{close},{close + 5},{close - 5},{close - 1},{day}\n"
                   for day, close in enumerate(CLOSES[:20]))
    source.write_text(header + body)
    result = indicators("-i", str(source), "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 0, result.stderr
    rows = read(tmp_path / "out.csv")
    assert list(rows[0])[:7] == ["Date", "Close", "High", "Low", "Open", "Volume", "symbol"]
    assert {row["symbol"] for row in rows} == {"ETH-USD"} and len(rows) == 20
    assert float(rows[-1]["sma_20"]) == pytest.approx(sum(CLOSES[:20]) / 20, rel=1e-12)


def test_symbol_option_names_a_file_without_a_symbol_column(tmp_path: Path) -> None:
    source = tmp_path / "bars.csv"
    source.write_text("date,open,high,low,close\n" + "\n".join(",".join(row.split(",")[:5]) for row in bar_rows()))
    result = indicators("-i", str(source), "-o", "-", "--symbol", "sol/usd")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert {row["symbol"] for row in csv.DictReader(io.StringIO(result.stdout))} == {"SOL-USD"}


@pytest.mark.parametrize("header", ["time,ticker,close,qty", "datetime,symbol,last,size", "Timestamp,Ticker,Price,Volume",
                                    "date,pair,price,quantity", "ticker,qty,timestamp,close"])
def test_common_column_names_are_accepted_in_any_order(tmp_path: Path, header: str) -> None:
    names = header.split(",")
    values = {0: "2024-03-09T23:59:00Z", 1: "BTC-USD", 2: "64000.5", 3: "0.1"}
    roles = ["time", "symbol", "price", "volume"]
    order = [next(i for i, role in enumerate(roles) if _role(name) == role) for name in names]
    second = {**values, 0: "2024-03-09T23:59:01Z", 2: "64001", 3: "0.2"}
    source = tmp_path / "ticks.csv"
    source.write_text(header + "\n" + ",".join(values[i] for i in order) + "\n" + ",".join(second[i] for i in order)
                      + "\n")
    result = indicators("-i", str(source), "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 0, result.stderr
    rows = read(tmp_path / "out.csv")
    assert list(rows[0])[:4] == names  # the user's own column names are kept
    assert float(rows[0]["vwap"]) == 64000.5  # the price and volume columns were found
    assert float(rows[1]["vwap"]) == pytest.approx((64000.5 * 0.1 + 64001 * 0.2) / 0.3, rel=1e-12)


def _role(name: str) -> str:
    name = name.lower()
    return {"timestamp": "time", "datetime": "time", "date": "time", "ticker": "symbol", "pair": "symbol",
            "close": "price", "last": "price", "qty": "volume", "size": "volume", "quantity": "volume"}.get(name, name)


@pytest.mark.parametrize(("text", "message"), [
    ("Date,Open,High,Close\n2024-01-01,1,2,1.5\n", "bars need low"),
    ("time,ticker,prize\n2024-01-01,BTC-USD,1\n", "unknown column 'prize'"),
    ("time,price,close\n2024-01-01,1,1\n", "both a price and a close column"),
    ("when,symbol,price\n2024-01-01,BTC-USD,1\n", "unknown column 'when'"),
    ("2024-01-01,1,2,3,4,5\n", "the first row has 6 fields and no header names them"),
    ("Date,Open,High,Low,Close,Volume\n", "nothing written: the input has no data rows"),
    ("", "nothing written: the input has no data rows"),
    ("timestamp,symbol,price\nyesterday,BTC-USD,1\n2024-01-01,BTC-USD,-1\n", "nothing written: 2 of 2 rows skipped"),
])
def test_nothing_written_exits_2_says_why_and_leaves_no_output_file(tmp_path: Path, text: str, message: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text(text)
    result = indicators("-i", str(source), "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    if "header" in result.stderr or "fields" in result.stderr:
        assert "expected a header naming the columns — ticks: timestamp (or time, date, datetime)" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv"]


def test_a_failed_run_leaves_an_existing_output_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text("earlier result\n")
    (tmp_path / "in.csv").write_text("Date,Open,High,Low,Close\n")
    assert indicators("-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")).returncode == 2
    assert (tmp_path / "out.csv").read_text() == "earlier result\n"


def test_nothing_written_to_stdout_prints_nothing() -> None:
    result = indicators("-i", "-", "-o", "-", stdin="timestamp,symbol,price\nyesterday,BTC-USD,1\n")
    assert result.returncode == 2 and result.stdout == ""


def test_bars_with_a_candle_timeframe_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "BTC-USD.csv"
    source.write_text("Date,Open,High,Low,Close\n2024-01-01,1,2,0.5,1.5\n")
    result = indicators("-i", str(source), "-o", str(tmp_path / "out.csv"), "--timeframe", "1h")
    assert result.returncode == 2 and "OHLCV bars (each row is already a candle)" in result.stderr


def test_an_inconsistent_bar_is_skipped_with_its_reason(tmp_path: Path) -> None:
    source = tmp_path / "BTC-USD.csv"
    source.write_text("Date,Open,High,Low,Close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1,0.9,0.5,1.5\n"
                      "2024-01-03,x,2,0.5,1.5\n")
    result = indicators("-i", str(source), "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 1
    assert "line 3: skipped (field_invalid): bar out of bounds: open 1.0, high 0.9, low 0.5, close 1.5" in result.stderr
    assert "line 4: skipped (price_not_number): open:" in result.stderr
    assert len(read(tmp_path / "out.csv")) == 1
