"""Candle windowing in the pipeline step: grace, late, out-of-order, UTC midnight, gaps, flush."""

from __future__ import annotations

from datetime import date

from core_support import at, lineage, tick

from processors.core.indicators import IndicatorSpec
from processors.core.pipeline import PipelineConfig, SymbolProcessor, step
from processors.core.rules import RuleSpec
from processors.core.timeutil import to_us
from schemas.instruments import Instrument

SMALL = IndicatorSpec(sma=(2,), ema=(), rsi=(), macd=None, bollinger=None, vwap=True)
NO_RULES = RuleSpec(rsi_reversal=None, ema_cross=None, macd_cross=None, seed_rsi_ema=None)


def config(*timeframes: str, grace_ms: int = 5_000) -> PipelineConfig:
    return PipelineConfig(indicators=SMALL, rules=NO_RULES, candle_timeframes=timeframes, grace_ms=grace_ms)


def test_a_window_closes_when_a_tick_reaches_its_end_plus_grace() -> None:
    processor = SymbolProcessor(config("1m"), Instrument("BTC-USD", "test"))
    ticks = [tick(seconds, price, volume) for seconds, price, volume in [(0.0, 100.0, 1.0), (30.0, 104.0, 2.0),
                                                                         (59.9, 101.0, 0.5)]]
    for i, one in enumerate(ticks):
        assert processor.process(one, lineage(i)).candles == []
    next_window = tick(62.0, 102.0)
    assert processor.process(next_window, lineage(3)).candles == []  # 62 < 60 + 5
    closing = tick(65.0, 103.0)
    out = processor.process(closing, lineage(4))
    [candle] = out.candles
    assert (candle.open, candle.high, candle.low, candle.close) == (100.0, 104.0, 100.0, 101.0)
    assert (candle.volume, candle.trade_count, candle.timeframe) == (3.5, 3, "1m")
    assert candle.ts_open == at(0) and candle.ts_close == at(60) and candle.ts_event == at(60)
    # what a close emits carries the window's last tick, not the tick that closed it (docs/core.md, determinism)
    assert candle.ts_init == ticks[2].ts_init and candle.lineage == lineage(2)
    [tick_snapshot, candle_snapshot] = sorted(out.snapshots, key=lambda s: s.timeframe == "1m")
    assert tick_snapshot.timeframe == "tick" and tick_snapshot.price == 103.0
    assert candle_snapshot.timeframe == "1m" and candle_snapshot.price == 101.0
    assert candle_snapshot.ts_event == at(60) and candle_snapshot.values["vwap"] == 101.0
    assert candle_snapshot.ts_init == ticks[2].ts_init and candle_snapshot.lineage == lineage(2)
    # a window of the smallest timeframe closed: the running summary of the day as it stood at the close,
    # before the closing tick, carrying the day's last tick
    [summary] = out.summaries
    assert not summary.final and summary.tick_count == 4 and summary.ts_event == next_window.ts_event
    assert summary.lineage == lineage(3)


def test_candle_indicators_run_on_closes_with_candle_volumes() -> None:
    processor = SymbolProcessor(config("1m", grace_ms=0), Instrument("BTC-USD", "test"))
    processor.process(tick(1, 10.0, 1.0), lineage(0))
    processor.process(tick(2, 12.0, 1.0), lineage(1))  # candle 1: close 12, volume 2
    processor.process(tick(61, 20.0, 3.0), lineage(2))  # closes candle 1; candle 2: close 20, volume 3
    out = processor.process(tick(121, 5.0), lineage(3))  # closes candle 2
    [snapshot] = [s for s in out.snapshots if s.timeframe == "1m"]
    assert snapshot.values["sma_2"] == (12.0 + 20.0) / 2
    assert snapshot.values["vwap"] == (12.0 * 2 + 20.0 * 3) / 5


def test_out_of_order_tick_within_grace_goes_to_its_candle_and_the_day_but_not_to_tick_indicators() -> None:
    processor = SymbolProcessor(config("1m"), Instrument("BTC-USD", "test"))
    processor.process(tick(5.0, 100.0), lineage(0))
    processor.process(tick(30.0, 101.0), lineage(1))
    processor.process(tick(62.0, 102.0), lineage(2))  # next window; window [0, 60) still open until 65
    late = processor.process(tick(58.0, 110.0, 2.0), lineage(3))  # older than 62, but within grace
    assert late.out_of_order and late.rejections == [] and late.snapshots == []
    earlier = processor.process(tick(1.0, 90.0), lineage(4))  # older than the window's open
    assert earlier.out_of_order
    out = processor.process(tick(70.0, 103.0), lineage(5))
    [candle] = out.candles
    # Open and close by event time: 1 s (90) opens, 58 s (110) closes; extremes include both.
    assert (candle.open, candle.high, candle.low, candle.close) == (90.0, 110.0, 90.0, 110.0)
    assert candle.trade_count == 4 and candle.volume == 5.0
    assert out.summaries[0].tick_count == 5  # the day at the close, before the closing tick (23:01:10)
    assert processor.last == to_us(at(70.0))


def test_a_tick_whose_window_closed_is_rejected_as_late_and_changes_nothing() -> None:
    config_1m = config("1m")
    state = None
    for i, seconds in enumerate([0.0, 30.0, 66.0]):
        state, _ = step(config_1m, state, tick(seconds, 100.0 + i), lineage(i))
    late_tick = tick(59.0, 99.0, n=9)
    after, out = step(config_1m, state, late_tick, lineage(3))
    [letter] = out.rejections
    assert letter.reason == "late" and "1m window" in letter.detail and "grace 5s" in letter.detail
    assert letter.source == "test" and letter.origin == lineage(3) and letter.ts_init == late_tick.ts_init
    assert letter.raw == late_tick.model_dump_json()
    assert after == state and out.snapshots == [] and out.candles == [] and out.summaries == []


def test_without_candle_timeframes_lateness_is_grace_behind_the_latest_tick() -> None:
    processor = SymbolProcessor(config(), Instrument("BTC-USD", "test"))
    processor.process(tick(100.0, 1.0), lineage(0))
    assert processor.process(tick(96.0, 1.0), lineage(1)).out_of_order  # 4 s behind: accepted
    [letter] = processor.process(tick(95.0, 1.0), lineage(2)).rejections  # 5 s behind: late
    assert letter.reason == "late" and "grace 5s" in letter.detail


def test_a_utc_midnight_closes_the_day_and_its_candles_regardless_of_grace() -> None:
    processor = SymbolProcessor(config("1m"), Instrument("BTC-USD", "test"))
    processor.process(tick(3590.0, 100.0), lineage(0))  # 23:59:50
    processor.process(tick(3599.0, 101.0), lineage(1))  # 23:59:59
    out = processor.process(tick(3601.0, 102.0), lineage(2))  # 00:00:01, inside the grace of [23:59, 00:00)
    [candle] = out.candles
    assert candle.ts_close == at(3600) and candle.close == 101.0
    # the closed 1m window's running summary, then the day's final one, both as the day stood: its last
    # tick (23:59:59) is what they carry, not the tick of the next day that closed it
    [running, final] = out.summaries
    assert not running.final and running.tick_count == 2 and running.ts_event == at(3599.0)
    assert final.final and final.date == date(2024, 3, 9) and final.tick_count == 2 and final.close == 101.0
    assert final.ts_event == at(3599.0) and final.lineage == lineage(1)
    [letter] = processor.process(tick(3598.0, 99.0), lineage(3)).rejections  # a tick of the closed day
    assert letter.reason == "late" and "2024-03-09" in letter.detail


def test_windows_close_oldest_end_first_across_timeframes_and_empty_windows_make_no_candle() -> None:
    processor = SymbolProcessor(config("5m", "1m", grace_ms=0), Instrument("BTC-USD", "test"))
    processor.process(tick(10.0, 100.0), lineage(0))
    first = processor.process(tick(250.0, 101.0), lineage(1))  # closes 1m [0, 60); 60..240 had no ticks
    assert [(c.timeframe, c.ts_open) for c in first.candles] == [("1m", at(0))]
    out = processor.process(tick(300.0, 102.0), lineage(2))
    # Same end: the configured timeframe order breaks the tie.
    assert [(c.timeframe, c.ts_open, c.ts_close) for c in out.candles] == [
        ("5m", at(0), at(300)), ("1m", at(240), at(300)),
    ]
    assert len(out.summaries) == 1  # one running summary per end of a closed smallest (1m) window


def test_gap_closes_several_windows_in_one_step() -> None:
    processor = SymbolProcessor(config("1m", grace_ms=100_000), Instrument("BTC-USD", "test"))
    processor.process(tick(10.0, 100.0), lineage(0))
    assert processor.process(tick(70.0, 101.0), lineage(1)).candles == []  # [0, 60) open until 160
    out = processor.process(tick(400.0, 102.0), lineage(2))
    assert [c.ts_close for c in out.candles] == [at(60), at(120)]
    assert [s.ts_event for s in out.snapshots if s.timeframe == "1m"] == [at(60), at(120)]


def test_flush_closes_open_windows_and_emits_a_running_summary() -> None:
    processor = SymbolProcessor(config("1m", "5m"), Instrument("BTC-USD", "test"))
    last = tick(10.0, 100.0)
    processor.process(last, lineage(0))
    out = processor.flush(last, lineage(0))
    assert [c.timeframe for c in out.candles] == ["1m", "5m"]
    # the 1m close's running summary, then the end of input's (the same when nothing changed in between)
    [at_close, summary] = out.summaries
    assert at_close == summary and not summary.final and summary.tick_count == 1
    assert processor.flush(last, lineage(0)).candles == []  # nothing left open
