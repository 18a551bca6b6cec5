"""``stockstream indicators`` end to end: the real console script on CSV files."""

from __future__ import annotations

import csv
import io
import os
import pty
import subprocess
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import talib

from processors.core.pipeline import PipelineConfig, step
from schemas.events import Lineage, Tick
from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "tests" / "data" / "ticks_sample.csv"
NAMES = ["sma_20", "sma_50", "ema_12", "ema_26", "rsi_14", "macd", "macd_signal", "macd_hist",
         "bb_upper", "bb_middle", "bb_lower", "vwap"]


def indicators(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STOCKSTREAM, "indicators", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def read(path: Path | str) -> list[dict[str, str]]:
    text = path if isinstance(path, str) else path.read_text()
    return list(csv.DictReader(io.StringIO(text)))


def expected_by_step(rows: list[dict[str, str]], topic: str) -> list[tuple[dict[str, float | None], str]]:
    """The same rows through the pure step function in-process (the one definition)."""
    config = PipelineConfig(candle_timeframes=())
    states: dict[str, dict | None] = defaultdict(lambda: None)
    results = []
    for offset, row in enumerate(rows):
        moment = datetime.fromisoformat(row["timestamp"])
        tick = Tick(symbol=row["symbol"], venue=row.get("venue") or "file", price=float(row["price"]), volume=float(row["volume"]), ts_event=moment,
                    ts_init=moment, source="file", source_id=str(offset + 2))
        key = f"{tick.symbol}@{tick.venue}"
        states[key], out = step(config, states[key], tick, Lineage(topic=topic, partition=-1, offset=offset))
        results.append((out.snapshots[0].values, ";".join(f"{s.rule}:{s.side}" for s in out.signals)))
    return results


def test_sample_file_tick_by_tick_equals_the_pipeline_step_and_talib(tmp_path: Path) -> None:
    output = tmp_path / "out.csv"
    result = indicators("--input", str(SAMPLE), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    source, got = read(SAMPLE), read(output)
    # The output gains the venue of each row (here every row is of the default venue, ``file``).
    assert output.read_text().splitlines()[0] == "timestamp,symbol,price,volume,venue," + ",".join(NAMES) + ",signals"
    assert {row["venue"] for row in got} == {"file"}
    assert len(got) == len(source)
    assert [[r[c] for c in ("timestamp", "symbol", "price", "volume")] for r in got] == [list(r.values()) for r in source]

    # Same values (to the last bit: floats are written with repr) and signals as the step function.
    for row, (values, signals) in zip(got, expected_by_step(source, SAMPLE.name), strict=True):
        assert [row[name] for name in NAMES] == ["" if values[n] is None else repr(values[n]) for n in NAMES]
        assert row["signals"] == signals
    assert sum(bool(row["signals"]) for row in got) > 100

    # Indicators are per symbol: each symbol's column equals TA-Lib over that symbol's prices alone.
    for symbol in ("BTC-USD", "ETH-USD", "SOL-USD"):
        mine = [row for row in got if row["symbol"] == symbol]
        close = np.array([float(row["price"]) for row in mine])
        for name, reference in (("sma_20", talib.SMA(close, 20)), ("ema_26", talib.EMA(close, 26)),
                                ("rsi_14", talib.RSI(close, 14)), ("bb_upper", talib.BBANDS(close, 20, 2, 2, 0)[0])):
            ours = np.array([float(row[name]) if row[name] else np.nan for row in mine])
            assert np.array_equal(np.isnan(ours), np.isnan(reference)), (symbol, name)
            defined = ~np.isnan(reference)
            assert np.allclose(ours[defined], reference[defined], rtol=1e-9, atol=0), (symbol, name)
        # VWAP restarts at UTC midnight: the first tick of the new day is its own VWAP.
        first_of_day = next(row for row in mine if row["timestamp"].startswith("2024-03-10"))
        assert float(first_of_day["vwap"]) == pytest.approx(float(first_of_day["price"]), rel=1e-15)


def test_bad_rows_are_reported_with_line_numbers_and_skipped(tmp_path: Path) -> None:
    lines = [
        "timestamp,symbol,price,volume",                  # 1
        "2024-03-09T23:59:00Z,BTC-USD,64000.5,0.1",       # 2
        "2024-03-09T23:59:00.5Z,ETH-USD,3400,1",           # 3
        "2024-03-09T23:59:01Z,BTC-USD,abc,0.1",           # 4 bad price
        "2024-03-09T23:59:02+00:00,ETH-USD,-3,1",         # 5 negative price
        "yesterday,BTC-USD,64001,0.1",                    # 6 bad timestamp
        "2024-03-09T23:59:03Z,,64001,0.1",                # 7 no symbol
        "2024-03-09T23:59:04Z,BTC-USD",                   # 8 too few fields
        "2024-03-09T23:59:10Z,BTC-USD,64002,",            # 9 fine (no volume)
        "2024-03-09T23:59:08Z,BTC-USD,64003,0.2",         # 10 out of order (2 s behind, within grace)
        "2024-03-09T23:59:01Z,BTC-USD,64004,0.2",         # 11 late (9 s behind, grace 5 s)
        "",                                               # 12 blank: ignored
        "2024-03-10T00:00:01.25+01:00,ETH-USD,3401,2",    # 13 an offset: 23:00:01.25 UTC → late for ETH
        "2024-03-09T23:59:11.123456Z,ETH-USD,3402,2",     # 14 fine
    ]
    source = tmp_path / "ticks.csv"
    source.write_text("\n".join(lines) + "\n")
    result = indicators("-i", str(source), "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 1
    reported = {int(line.split(":")[0].removeprefix("line ")): line.split("(")[1].split(")")[0]
                for line in result.stderr.splitlines() if line.startswith("line ")}
    assert reported == {4: "price_not_number", 5: "price_not_positive", 6: "timestamp_invalid",
                        7: "symbol_missing", 8: "malformed_csv", 10: "out_of_order", 11: "late", 13: "late"}
    assert "8 of 12 rows skipped; 4 rows written" in result.stderr
    written = read(tmp_path / "out.csv")
    assert [(row["symbol"], row["price"]) for row in written] == [
        ("BTC-USD", "64000.5"), ("ETH-USD", "3400"), ("BTC-USD", "64002"), ("ETH-USD", "3402")]


@pytest.mark.parametrize(("args", "message"), [
    (["--input", "/nonexistent/ticks.csv", "--output", "-"], "cannot open /nonexistent/ticks.csv"),
    (["--input", str(SAMPLE), "--output", "-", "--timeframe", "7m"], "does not divide a UTC day"),
    (["--input", str(SAMPLE), "--output", "-", "--strategy", str(ROOT / "pyproject.toml")], "invalid strategy"),
])
def test_usage_problems_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = indicators(*args)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


def test_a_bad_header_exits_2_before_any_output(tmp_path: Path) -> None:
    source = tmp_path / "ticks.csv"
    source.write_text("timestamp,symbol,price,colour\n2024-03-09T23:59:00Z,BTC-USD,1,red\n")
    result = indicators("-i", str(source), "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 2
    assert "header 'timestamp,symbol,price,colour': unknown column 'colour'; expected a header naming the columns" \
        in result.stderr
    assert not (tmp_path / "out.csv").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ticks.csv"]  # no partial file left behind


def test_stdin_to_stdout_without_a_header() -> None:
    text = "2024-03-09T23:59:00Z,btc/usd,64000\n2024-03-09T23:59:01Z,BTC-USD,64010.25,0.5\n"
    result = indicators("-i", "-", "-o", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    rows = read(result.stdout)
    assert [(row["symbol"], row["price"], row["volume"], row["vwap"]) for row in rows] == [
        ("btc/usd", "64000", "", ""), ("BTC-USD", "64010.25", "0.5", "64010.25")]


def test_one_row_per_closed_candle_with_timeframe_1m(tmp_path: Path) -> None:
    output = tmp_path / "candles.csv"
    result = indicators("-i", str(SAMPLE), "-o", str(output), "--timeframe", "1m")
    assert result.returncode == 0, result.stderr
    got = read(output)
    assert list(got[0])[:11] == ["symbol", "venue", "timeframe", "ts_open", "ts_close", "open", "high", "low",
                                 "close", "volume", "trade_count"]
    # OHLCV equal a plain group-by of the input (every row is in order; the last candles are flushed).
    groups: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for row in read(SAMPLE):
        minute = datetime.fromisoformat(row["timestamp"]).strftime("%Y-%m-%dT%H:%M:00Z")
        groups[(row["symbol"], minute)].append((float(row["price"]), float(row["volume"])))
    assert len(got) == len(groups)
    for row in got:
        ticks = groups[(row["symbol"], row["ts_open"])]
        prices = [p for p, _ in ticks]
        assert (float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"])) == (
            prices[0], max(prices), min(prices), prices[-1])
        assert int(row["trade_count"]) == len(ticks)
        assert float(row["volume"]) == pytest.approx(sum(v for _, v in ticks), rel=1e-12)
    btc = [row for row in got if row["symbol"] == "BTC-USD"]
    assert len(btc) == sum(symbol == "BTC-USD" for symbol, _ in groups) and btc[19]["sma_20"] and not btc[18]["sma_20"]
    assert float(btc[19]["sma_20"]) == pytest.approx(np.mean([float(r["close"]) for r in btc[:20]]), rel=1e-12)


def test_a_strategy_file_changes_the_columns(tmp_path: Path) -> None:
    output = tmp_path / "out.csv"
    result = indicators("-i", str(SAMPLE), "-o", str(output), "--strategy", str(ROOT / "docs/examples/strategy.yaml"))
    assert result.returncode == 0, result.stderr
    header = output.read_text().splitlines()[0].split(",")
    assert header[5:] == ["sma_20", "sma_50", "ema_9", "ema_21", "rsi_14", "macd", "macd_signal", "macd_hist",
                          "bb_upper", "bb_middle", "bb_lower", "vwap", "rsi_7", "signals"]
    rows = read(output)
    assert all(row["rsi_7"] == "" for row in rows if row["symbol"] != "SOL-USD")
    assert any(row["rsi_7"] for row in rows if row["symbol"] == "SOL-USD")
    assert not any("seed_rsi_ema" in row["signals"] for row in rows)


def test_undecodable_bytes_and_nul_spoil_only_their_own_rows(tmp_path: Path) -> None:
    source = tmp_path / "ticks.csv"
    source.write_bytes(b"timestamp,symbol,price,volume\n"
                       b"2024-03-09T23:59:00Z,BTC-USD,64000,1\n"
                       b"2024-03-09T23:59:01Z,BTC-\xff\xfeUSD,64000,1\n"
                       b"2024-03-09T23:59:02Z,BTC-USD,640\x0001,1\n"
                       b"2024-03-09T23:59:03Z,BTC-USD,64002,1\n")
    result = indicators("-i", str(source), "-o", "-")
    assert result.returncode == 1
    assert "line 3: skipped (symbol_invalid)" in result.stderr and "line 4: skipped (price_not_number)" in result.stderr
    assert [row["price"] for row in read(result.stdout)] == ["64000", "64002"]


def test_a_progress_bar_goes_to_stderr_only_when_it_is_a_terminal(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen([STOCKSTREAM, "indicators", "-i", str(SAMPLE), "-o", str(tmp_path / "tty.csv")],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=120) == 0
    os.close(controller)
    assert b"ticks_sample.csv" in shown and b"%" in shown
    plain = indicators("-i", str(SAMPLE), "-o", str(tmp_path / "plain.csv"))
    assert plain.stderr == ""  # not a terminal: no bar
    assert (tmp_path / "tty.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()


def test_two_venues_of_one_symbol_are_two_series_each_equal_to_its_venue_alone(tmp_path: Path) -> None:
    """Interleaved rows of BTC-USD on two venues (``venue`` column, and ``--venue`` for rows without one)."""
    source = read(SAMPLE)
    btc = [row for row in source if row["symbol"] == "BTC-USD"][:400]
    mixed = tmp_path / "mixed.csv"
    lines = ["timestamp,symbol,price,volume,venue"]
    for index, row in enumerate(btc):
        lines.append(f"{row['timestamp']},BTC-USD,{row['price']},{row['volume']},kraken")
        # The other venue quotes the same moments 0.3 % higher, with no venue cell (→ --venue coinbase).
        lines.append(f"{row['timestamp']},BTC-USD,{float(row['price']) * 1.003!r},{row['volume']},")
        assert index < 10_000
    mixed.write_text("\n".join(lines) + "\n")
    output = tmp_path / "mixed-out.csv"
    result = indicators("--input", str(mixed), "--output", str(output), "--venue", "coinbase")
    assert result.returncode == 0, result.stderr
    got = read(output)
    assert {row["venue"] for row in got} == {"kraken", "coinbase"}
    for venue in ("kraken", "coinbase"):
        alone = tmp_path / f"{venue}.csv"
        alone.write_text("\n".join([lines[0], *(line for line in lines[1:] if line.split(",")[4] in (venue, "")
                                                 and (venue == "coinbase") == line.endswith(","))]) + "\n")
        single = tmp_path / f"{venue}-out.csv"
        assert indicators("-i", str(alone), "-o", str(single), "--venue", venue).returncode == 0
        mine = [{name: row[name] for name in (*NAMES, "price", "signals")} for row in got if row["venue"] == venue]
        assert mine == [{name: row[name] for name in (*NAMES, "price", "signals")} for row in read(single)]
        assert len(mine) == len(btc)
