"""The warm-up ``runs start`` and ``strategy deploy`` choose (stockstream/warmup.py): the backfill's rule.

Pure parts: the rule's time (``warmup_read_from_us``, the one the backfill's ``resolve_range`` uses),
which records date a range's start, the warm-up of a strategy on the processor's settings, and the
line the operator reads. The offsets on a real log are tested by
tests/integration/replay/test_run_warmup.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.core.strategy import DEFAULT_STRATEGY
from processors.core.timeutil import DAY_US, to_us
from processors.stream.settings import ProcessSettings
from spark_jobs.backfill.plan import DEFAULT_MIN_WARMUP_US, Warmup, warmup_periods
from spark_jobs.backfill.ranges import warmup_read_from_us
from stockstream.warmup import WarmStart, dating_offsets, run_warmup

HOUR_US = 3_600 * 10**6
MINUTE_US = 60 * 10**6
DEFAULT_PERIODS = warmup_periods(DEFAULT_STRATEGY.indicators.spec())


def settings(tmp_path, text: str | None = None, timeframes: tuple[str, ...] = ("1m",),
             horizons: tuple[str, ...] = ("1m", "5m", "1h", "1d")) -> ProcessSettings:
    strategy = None
    if text is not None:
        strategy = tmp_path / "strategy.toml"
        strategy.write_text(text)
    return ProcessSettings(strategy_file=strategy, candle_timeframes=timeframes, scorecard_horizons=horizons)


def test_the_rule_reads_from_the_midnight_before_the_start_less_a_day_and_the_warmup():
    first = to_us(datetime(2024, 4, 3, 10, 20, 7, tzinfo=UTC))
    warmup = 31 * HOUR_US + 3 * MINUTE_US
    expected = datetime(2024, 4, 2, tzinfo=UTC) - timedelta(hours=31, minutes=3)
    assert warmup_read_from_us(first, warmup) == to_us(expected)
    midnight = to_us(datetime(2024, 4, 3, tzinfo=UTC))  # a start at midnight still reads the whole day before
    assert warmup_read_from_us(midnight, 0) == midnight - DAY_US


def test_a_range_is_dated_by_its_own_first_records():
    assert dating_offsets({0: 1500, 1: 900}, {0: 4500, 1: 2700}) == {0: 1500, 1: 900}
    # A partition with nothing in the range keeps its start: resolve_range leaves it out of the dating.
    assert dating_offsets({0: 1500, 1: 2700}, {0: 4500, 1: 2700}) == {0: 1500, 1: 2700}


def test_a_shadow_from_the_log_end_is_dated_by_the_newest_ticks():
    assert dating_offsets({0: 4500, 1: 2700, 2: 0}, {0: 4500, 1: 2700, 2: 0}) == {0: 4499, 1: 2699, 2: 0}


def test_the_warmup_of_the_default_strategy_is_the_backfills(tmp_path):
    warmup, cumulative = run_warmup(settings(tmp_path))
    assert not cumulative
    assert warmup.periods == DEFAULT_PERIODS
    # DEFAULT_PERIODS one-minute candles, then the longest scorecard horizon (1d): a signal that old has its
    # outcome in the range, so the warm-up must have produced it.
    assert warmup.duration_us == DEFAULT_PERIODS * MINUTE_US + DAY_US
    hourly, _ = run_warmup(settings(tmp_path, timeframes=("1m", "1h")))
    assert hourly.duration_us == DEFAULT_PERIODS * HOUR_US + DAY_US and hourly.longest_candle_us == HOUR_US
    bare, _ = run_warmup(settings(tmp_path, timeframes=(), horizons=()))
    assert bare.duration_us == DEFAULT_MIN_WARMUP_US, "ticks only: at least the backfill's minimum (1 h)"


def test_rule_language_strategies_lengthen_the_warmup_and_a_cumulative_one_is_flagged(tmp_path):
    slow = '[strategies.slow]\ntimeframe = "1m"\nbuy = "close > ema(400)"\nsell = "close < ema(400)"\n'
    warmup, cumulative = run_warmup(settings(tmp_path, slow, horizons=()))
    assert warmup.periods > DEFAULT_PERIODS and not cumulative
    assert warmup.duration_us == warmup.periods * MINUTE_US
    volume = '[strategies.flow]\ntimeframe = "1m"\nbuy = "obv() > obv()[1]"\nsell = "obv() < obv()[1]"\n'
    assert run_warmup(settings(tmp_path, volume))[1], "OBV never forgets: only the log's beginning is exact"


def test_the_operator_reads_what_the_warmup_reads_and_why():
    warmup = Warmup(periods=DEFAULT_PERIODS, duration_us=DEFAULT_PERIODS * MINUTE_US + DAY_US,
                    longest_candle_us=MINUTE_US)
    first = to_us(datetime(2024, 4, 3, 10, 20, tzinfo=UTC))
    chosen = WarmStart(offsets={0: 1200, 1: 0}, starts={0: 4000, 1: 1500},
                       read_from_us=warmup_read_from_us(first, warmup.duration_us), warmup=warmup, cumulative=False,
                       log_start=frozenset({1}))
    assert chosen.records == 2800 + 1500
    assert chosen.midnight == datetime(2024, 4, 3, tzinfo=UTC), "the midnight that opened the first tick's day"
    line = chosen.describe()
    assert line.startswith("warm-up: 4,300 records from 0:1200,1:0 build the state before the range")
    hours, minutes = divmod(DEFAULT_PERIODS, 60)
    assert f"midnight 2024-04-03 − 1 day − 1d {hours}h {minutes}m of warm-up ({DEFAULT_PERIODS} periods of 1m" in line
    start = datetime(2024, 4, 2, tzinfo=UTC) - timedelta(days=1, hours=hours, minutes=minutes)
    assert f"ticks since {start:%Y-%m-%dT%H:%M:%SZ}" in line

    whole = WarmStart({0: 0}, {0: 900}, chosen.read_from_us, warmup, cumulative=True, log_start=frozenset({0}))
    assert "900 records from 0:0 (the log's beginning)" in whole.describe()
    assert "only --warm-from 0 gives outputs equal to live's" in whole.describe()
    assert WarmStart({0: 0}, {0: 0}, None, warmup, False, frozenset({0})).describe() == \
        "warm-up: none needed, the range starts at the log's beginning."


def test_a_per_symbol_override_with_a_slower_indicator_counts(tmp_path):
    slower = '[symbols."ETH-USD".indicators]\nema = [12, 26, 200]\n'
    warmup, _ = run_warmup(settings(tmp_path, slower, horizons=()))
    assert warmup.periods > DEFAULT_PERIODS, "every symbol's indicators are warm, not only the base's"
