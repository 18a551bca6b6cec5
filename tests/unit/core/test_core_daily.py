"""Daily aggregates: values by event time, running and final summaries, signal counts."""

from __future__ import annotations

import math
import random
from datetime import date

from core_support import lineage, tick

from processors.core.pipeline import PipelineConfig, SymbolProcessor
from schemas.instruments import Instrument

FIRST_DAY, SECOND_DAY = date(2024, 3, 9), date(2024, 3, 10)


def test_final_summary_on_the_first_tick_of_a_later_day_with_exact_values() -> None:
    processor = SymbolProcessor(PipelineConfig(candle_timeframes=()), Instrument("BTC-USD", "test"))
    rows = [(3000.0, 100.0, 2.0), (3100.0, 104.0, None), (3098.0, 98.0, 1.0), (3200.0, 101.0, 3.0)]
    for i, (seconds, price, volume) in enumerate(rows):
        processor.process(tick(seconds, price, volume), lineage(i))
    cause = tick(3600.0 + 86_400.0 * 2 + 5.0, 99.0)  # two days later (no ticks in between)
    out = processor.process(cause, lineage(9))
    [final] = out.summaries
    assert final.final and final.date == FIRST_DAY
    assert (final.open, final.high, final.low, final.close) == (100.0, 104.0, 98.0, 101.0)
    assert final.mean_price == (100.0 + 104.0 + 98.0 + 101.0) / 4 and final.tick_count == 4
    assert final.volume == 6.0 and final.vwap == (100.0 * 2 + 98.0 + 101.0 * 3) / 6
    # it carries the day's last tick (its origin), not the tick of a later day that closed it
    last = tick(*rows[3])
    assert final.ts_event == last.ts_event and final.ts_init == last.ts_init and final.lineage == lineage(3)
    flushed = processor.flush(cause, lineage(9)).summaries[0]
    assert flushed.date == date(2024, 3, 12) and flushed.tick_count == 1 and not flushed.final


def test_open_and_close_are_by_event_time_not_arrival() -> None:
    processor = SymbolProcessor(PipelineConfig(candle_timeframes=()), Instrument("BTC-USD", "test"))
    for i, (seconds, price) in enumerate([(10.0, 100.0), (8.0, 90.0), (12.0, 110.0), (11.0, 105.0)]):
        processor.process(tick(seconds, price), lineage(i))
    summary = processor.flush(tick(12.0, 110.0), lineage(3)).summaries[0]
    assert (summary.open, summary.close) == (90.0, 110.0)


def test_vwap_is_none_for_a_day_without_volume() -> None:
    processor = SymbolProcessor(PipelineConfig(candle_timeframes=()), Instrument("BTC-USD", "test"))
    processor.process(tick(1.0, 100.0, None), lineage(0))
    summary = processor.flush(tick(1.0, 100.0, None), lineage(0)).summaries[0]
    assert summary.vwap is None and summary.volume == 0.0


def test_running_summaries_every_n_ticks_without_candle_timeframes() -> None:
    processor = SymbolProcessor(PipelineConfig(candle_timeframes=(), summary_every_ticks=10), Instrument("BTC-USD", "test"))
    emitted = [i for i in range(35) if processor.process(tick(float(i), 100.0 + i % 3), lineage(i)).summaries]
    assert emitted == [9, 19, 29]


def test_running_summaries_follow_the_smallest_timeframe_whatever_the_listed_order() -> None:
    processor = SymbolProcessor(PipelineConfig(candle_timeframes=("5m", "1m"), grace_ms=0), Instrument("BTC-USD", "test"))
    emitted = [seconds for i, seconds in enumerate(range(0, 600, 20))
               if processor.process(tick(float(seconds), 100.0), lineage(i)).summaries]
    assert emitted == list(range(60, 600, 60))


def test_buy_and_sell_counts_cover_every_rule_and_timeframe_of_the_day() -> None:
    rng = random.Random(5)  # noqa: S311 - test data
    processor = SymbolProcessor(PipelineConfig(candle_timeframes=("1m",), grace_ms=2_000), Instrument("BTC-USD", "test"))
    price, seconds = 64_000.0, 0.0
    counted = {FIRST_DAY: [0, 0], SECOND_DAY: [0, 0]}
    finals = {}
    open_day = FIRST_DAY
    for i in range(3_000):
        seconds += rng.uniform(0.5, 2.5)
        price = round(price * math.exp(rng.gauss(0, 5e-4)), 2)
        out = processor.process(tick(seconds, price, 0.1), lineage(i))
        for signal in out.signals:
            # At the first tick of a day, candles closed by it still belong to the day before.
            day = open_day if signal.timeframe != "tick" else signal.ts_event.date()
            counted[day][signal.side == "SELL"] += 1
        for summary in out.summaries:
            if summary.final:
                finals[summary.date] = summary
                open_day = SECOND_DAY
    assert set(finals) == {FIRST_DAY}
    assert sum(counted[FIRST_DAY]) > 20  # the series does produce signals
    assert (finals[FIRST_DAY].buy_count, finals[FIRST_DAY].sell_count) == tuple(counted[FIRST_DAY])
    last = processor.flush(tick(seconds, price, 0.1), lineage(3_000))
    for signal in last.signals:
        counted[SECOND_DAY][signal.side == "SELL"] += 1
    running = last.summaries[0]
    assert running.date == SECOND_DAY and (running.buy_count, running.sell_count) == tuple(counted[SECOND_DAY])
