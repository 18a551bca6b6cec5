"""The Spark backfill runs the processor's strategy files and scores their signals: equal to the batch CLI.

The same ticks (two instruments, 28 h of event time across two UTC midnights, a few out-of-order and
late ticks) go through ``stockstream indicators --strategy FILE --outcomes FILE`` as a CSV and, as a
Kafka log, through the Spark backfill in three chunks, with a strategy file holding a multi-timeframe
strategy (5m, reading 1m and 1h), a 1m and a tick strategy beside the fixed rules, timeframes and
scorecard horizons as the processor would be configured. Compared:

- every outcome (strategy, version, timeframe, side, horizon, signal price and time, the maturing
  tick's price and time, gross and net return, fee), in order per instrument — exactly;
- the tick signals of every input row (the CLI's ``signals`` column) and the 5m and 1h signals of
  every candle (the CLI's ``--timeframe`` output) — exactly, in emission order;
- each signal's strategy version and condition text: the definition's.

Signal and outcome ids are not compared: they name the record's log position, which a CSV row and a
Kafka record do not share. The same ticks written as v1 records (the release before instruments)
backfill to the same signals and outcomes.
"""

from __future__ import annotations

import csv
import math
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from processors.core.strategies.file import parse_strategies
from processors.core.strategy import load_strategy
from processors.runtime.kafka_admin import ensure_topics
from schemas.events import Tick, encode
from spark_jobs.backfill.job import BackfillRequest, run_backfill
from spark_jobs.backfill.plan import strategies_warmup
from spark_jobs.backfill.ranges import RangeRequest
from spark_jobs.progress import SparkProgress
from spark_jobs.settings import SparkJobSettings
from stockstream.batch import candle_timeframes
from stockstream.cli import app
from tests.integration.spark.compare import read_dataset
from tests.integration.spark.synthetic import produce_all
from tests.support.kafka_tools import delete_topics
from tests.support.legacy import events_v1

pytestmark = [pytest.mark.integration, pytest.mark.spark]
STRATEGY = """
[strategies.trend_pullback]
timeframe = "5m"
buy  = "crosses_above(ema(3), ema(6)) and rsi(5)@1m < 80 and close > sma(2)@1h"
sell = "crosses_below(ema(3), ema(6)) or rsi(5)@1m > 85"
cooldown = "10m"

[strategies.minute_breakout]
timeframe = "1m"
buy  = "close > highest(high, 10)[1] and atr(5) > 0"
sell = "close < lowest(low, 10)[1]"

[strategies.tick_turn]
timeframe = "tick"
buy  = "crosses_above(ema(20), ema(60))"
sell = "crosses_below(ema(20), ema(60))"
"""
HORIZONS = ("1m", "5m", "1h")
FEE = 0.001
SYMBOLS = ("BTC-USD", "ETH-USD")
VENUE = "test"
START = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
HOURS = 28
STEP_S = 8
COMPARED = ("symbol", "venue", "strategy", "strategy_version", "timeframe", "side", "horizon", "signal_price",
            "signal_ts", "price", "return_gross", "return_net", "fee", "ts_event")


def _ticks() -> list[Tick]:
    """Both instruments interleaved in log order; 1 % out of order within grace, 0.3 % late."""
    rng = random.Random(15)  # noqa: S311 - a seeded test series
    prices = {"BTC-USD": 60_000.0, "ETH-USD": 3_000.0}
    ticks = []
    for index in range(HOURS * 3600 // STEP_S):
        for number, symbol in enumerate(SYMBOLS):
            moment = START + timedelta(seconds=index * STEP_S + number)
            prices[symbol] *= math.exp(rng.gauss(0, 0.0015))
            roll = rng.random()
            if roll < 0.01:
                moment -= timedelta(seconds=3)
            elif roll < 0.013:
                moment -= timedelta(seconds=241)
            ticks.append(Tick(symbol=symbol, venue=VENUE, price=round(prices[symbol], 2),
                              volume=round(rng.uniform(0.01, 3), 4), ts_event=moment, ts_init=moment,
                              source=VENUE, source_id=f"{symbol}-{index}"))
    return ticks


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _csv(ticks: list[Tick], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "symbol", "price", "volume", "venue"])
        for tick in ticks:
            writer.writerow([_iso(tick.ts_event), tick.symbol, repr(tick.price), repr(tick.volume), tick.venue])


def _cli(*arguments: str) -> None:
    result = CliRunner().invoke(app, ["indicators", *arguments])
    assert result.exit_code in (0, 1), result.output  # 1: the late ticks were skipped (reported)


@pytest.fixture(scope="module")
def runs(spark_session, stack, tmp_path_factory):
    """The CLI's outputs and the backfill's datasets for the v2 and the v1 log of the same ticks."""
    folder = tmp_path_factory.mktemp("strategies")
    strategy_file = folder / "strategy.toml"
    strategy_file.write_text(STRATEGY)
    strategy = load_strategy(strategy_file)
    timeframes = candle_timeframes(strategy, "tick")
    ticks = _ticks()
    _csv(ticks, folder / "ticks.csv")
    common = ["--input", str(folder / "ticks.csv"), "--strategy", str(strategy_file), "--no-flush"]
    _cli(*common, "--output", str(folder / "tick.csv"), "--outcomes", str(folder / "outcomes.csv"),
         "--horizons", ",".join(HORIZONS), "--fee", str(FEE))
    for timeframe in ("5m", "1h"):
        _cli(*common, "--output", str(folder / f"{timeframe}.csv"), "--timeframe", timeframe)

    run = uuid.uuid4().hex[:6]
    datasets = {}
    try:
        for version in (2, 1):
            prefix = f"tstrat{version}{run}."
            settings = SparkJobSettings(topic_prefix=prefix, bootstrap_servers=stack.kafka_bootstrap, partitions=1,
                                        spark_master="local[2]", candle_timeframes=timeframes,
                                        scorecard_horizons=HORIZONS, scorecard_fee=FEE)
            ensure_topics(settings, [settings.topics().ticks])
            produce_all(stack.kafka_bootstrap, settings.topics().ticks.name, [_record(tick, version) for tick in ticks])
            output = folder / f"backfill-v{version}"
            with SparkProgress(spark_session.spark, enabled=False) as progress:
                # An explicit end (the log's): the backfill leaves the last windows open, as the batch CLI's
                # --no-flush does (to the log's end it would close those the partition's stream time passed).
                request = BackfillRequest(range=RangeRequest(to_offset=len(ticks)), output=str(output), chunks=3,
                                          strategy=strategy)
                result = run_backfill(spark_session.spark, settings, request, progress)
            assert result.rows == len(ticks)
            assert len(result.groups) > 2, "chunked at UTC midnights: outcomes and strategies across chunk starts"
            # The log is shorter than the 891 1h candles the strategies' warm-up asks for, but each later chunk's
            # warm-up reaches back before its symbol's first tick: it holds every earlier tick, so it is exact.
            assert {group.status for group in result.groups} == {"exact"}, [g.detail for g in result.groups]
            datasets[version] = {kind: read_dataset(output, kind) for kind in ("signals", "outcomes")}
    finally:
        delete_topics(stack.kafka_bootstrap, f"tstrat2{run}.")
        delete_topics(stack.kafka_bootstrap, f"tstrat1{run}.")
    return folder, strategy, timeframes, datasets


def _record(tick: Tick, version: int) -> tuple[bytes, bytes]:
    if version == 2:
        return f"{tick.symbol}@{tick.venue}".encode(), encode(tick)
    fields = tick.model_dump(exclude={"venue", "schema_version"})
    return tick.symbol.encode(), events_v1.encode(events_v1.Tick(**fields))


def _by_instrument(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in log order per instrument (the CLI's order within an instrument; instruments interleave differently)."""
    return frame.sort_values(["symbol", "venue", "partition", "offset", "seq"], kind="stable").reset_index(drop=True)


def test_outcomes_equal_the_batch_cli(runs):
    folder, _, _, datasets = runs
    expected = pd.read_csv(folder / "outcomes.csv", dtype={"strategy_version": str}, float_precision="round_trip")
    assert len(expected) > 500 and set(expected["horizon"]) == set(HORIZONS)
    assert set(expected["timeframe"]) >= {"tick", "1m", "5m"}, "every strategy's signals are scored"
    got = _by_instrument(datasets[2]["outcomes"])
    expected = expected.assign(
        signal_ts=pd.to_datetime(expected["signal_ts"], utc=True), ts_event=pd.to_datetime(expected["ts_event"], utc=True))
    expected = expected.sort_values(["symbol", "venue"], kind="stable").reset_index(drop=True)
    got = got.assign(signal_ts=pd.to_datetime(got["signal_ts"], utc=True),
                     ts_event=pd.to_datetime(got["ts_event"], utc=True), symbol=got["symbol"].astype(str))
    assert len(got) == len(expected)
    for column in COMPARED:
        left, right = got[column].tolist(), expected[column].tolist()
        if column in ("signal_ts", "ts_event"):
            left, right = [t.value for t in left], [t.value for t in right]
        assert left == right, column  # floats too: the same arithmetic on the same doubles


def test_tick_signals_equal_the_batch_cli(runs):
    folder, _, _, datasets = runs
    rows = pd.read_csv(folder / "tick.csv", keep_default_na=False)
    expected = {(row.symbol, pd.Timestamp(row.timestamp).value): row.signals
                for row in rows.itertuples() if row.signals}
    signals = datasets[2]["signals"]
    found: dict[tuple[str, int], list[str]] = defaultdict(list)
    for row in _by_instrument(signals[signals["timeframe"] == "tick"]).itertuples():
        found[(str(row.symbol), pd.Timestamp(row.ts_event).value)].append(f"{row.strategy}:{row.side}")
    got = {key: ";".join(names) for key, names in found.items()}
    assert got == expected
    assert any(text.startswith("tick_turn:") or ";tick_turn:" in text for text in got.values())


@pytest.mark.parametrize("timeframe", ["5m", "1h"])
def test_candle_signals_equal_the_batch_cli(runs, timeframe):
    folder, _, _, datasets = runs
    rows = pd.read_csv(folder / f"{timeframe}.csv", keep_default_na=False)
    expected = {(row.symbol, pd.Timestamp(row.ts_close).value): row.signals for row in rows.itertuples() if row.signals}
    signals = datasets[2]["signals"]
    found: dict[tuple[str, int], list[str]] = defaultdict(list)
    for row in _by_instrument(signals[signals["timeframe"] == timeframe]).itertuples():
        found[(str(row.symbol), pd.Timestamp(row.ts_event).value)].append(f"{row.strategy}:{row.side}")
    assert {key: ";".join(names) for key, names in found.items()} == expected
    if timeframe == "5m":
        assert (signals["strategy"] == "trend_pullback").sum() > 0, "the multi-timeframe strategy fires"


def test_signals_name_their_strategy_version_and_condition(runs):
    _, strategy, timeframes, datasets = runs
    signals = datasets[2]["signals"]
    for definition in strategy.definitions(timeframes):
        mine = signals[(signals["strategy"] == definition.name) & (signals["timeframe"] == definition.timeframe)]
        assert len(mine) > 0, definition.name
        assert set(mine["strategy_version"]) == {definition.version}
        conditions = {"BUY": definition.buy_source, "SELL": definition.sell_source}
        assert all(row.condition == conditions[row.side] for row in mine.itertuples()), definition.name
    assert signals["strategy_version"].notna().all() and signals["condition"].notna().all()
    assert (signals["rule"] == signals["strategy"]).all()
    strategy_values = signals[signals["strategy"] == "tick_turn"]
    assert strategy_values["i_ema_20"].notna().all() and strategy_values["i_ema_60"].notna().all()


def test_a_v1_log_backfills_to_the_same_signals_and_outcomes(runs):
    _, _, _, datasets = runs
    for kind in ("signals", "outcomes"):
        v1, v2 = (_by_instrument(datasets[version][kind]) for version in (1, 2))
        assert len(v2) > 0
        pd.testing.assert_frame_equal(v1, v2, check_like=True, obj=kind)


def test_the_strategies_warmup_covers_their_slowest_indicator_their_history_and_confirm():
    definitions = parse_strategies(
        '[strategies.a]\ntimeframe = "tick"\nbuy = "crosses_above(ema(20), ema(60))"\n'
        '[strategies.b]\ntimeframe = "1m"\nbuy = "rising(adx(14), 3) and close > highest(high, 10)[2]"\nconfirm = 2\n',
        syntax="toml", source="test", candle_timeframes=("1m",))
    ema60 = 60 + math.ceil(math.log(1e-12) / math.log(59 / 61))
    adx14 = 14 + 2 * math.ceil(math.log(1e-12) / math.log(13 / 14))
    assert strategies_warmup(definitions[:1]) == (ema60 + 1 + 1, False)  # the cross looks one back; confirm 1
    assert strategies_warmup(definitions[1:]) == (adx14 + 3 + 2, False)  # rising(…, 3); confirm 2
    assert strategies_warmup(definitions) == (max(ema60 + 2, adx14 + 5), False)
    cumulative = parse_strategies('[strategies.c]\ntimeframe = "tick"\nbuy = "obv() > obv()[1]"\n', syntax="toml", source="test",
                                  candle_timeframes=())
    assert strategies_warmup(cumulative)[1] is True


def test_the_backfill_refuses_a_strategy_the_processor_would_refuse_before_spark_starts(tmp_path):
    strategy_file = tmp_path / "strategy.toml"
    strategy_file.write_text(STRATEGY)
    result = CliRunner().invoke(app, ["backfill", "--strategy", str(strategy_file)],
                                env={"STOCKSTREAM_TIMEFRAMES": "1m", "SPARK_MASTER": "local[1]"})
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "trend_pullback" in text and "5m" in text, text
