"""``runs diff``: positions only in A, only in B, changed, and scorecards side by side, over the common range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.core.pipeline import PipelineConfig, SymbolProcessor
from processors.core.rundiff import Span, closes_window, common, diff_scorecards, diff_signals
from processors.core.scorecard import Scorecards
from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs
from schemas.events import Lineage, Signal, SignalOutcome, Tick, make_outcome_id
from schemas.instruments import Instrument
from tests.integration.spark.synthetic import reference_events, synthetic_log, window_closes
from tests.support.kafka_tools import Record

T0 = datetime(2024, 4, 2, tzinfo=UTC)


def signal(offset: int, *, rule: str = "ema_cross", side: str = "BUY", price: float = 10.0, partition: int = 0,
           ema: float = 1.0) -> Signal:
    return Signal(signal_id=f"{offset:032x}", symbol="BTC-USD", venue="test", timeframe="tick", rule=rule,
                  strategy=rule, strategy_version=None, condition=None, side=side,
                  price=price, indicators={"ema_12": ema}, ts_event=T0 + timedelta(seconds=offset), ts_init=T0,
                  lineage=Lineage(topic="ticks", partition=partition, offset=offset))


def test_the_common_range_is_the_later_start_and_the_earlier_end():
    assert common(Span({0: 0, 1: 5}, None), Span({0: 10, 1: 0}, {0: 50, 1: 20})) == Span({0: 10, 1: 5}, {0: 50, 1: 20})
    assert common(Span({0: 30}, {0: 40}), Span({0: 50}, {0: 60})) == Span({0: 50}, {0: 50}), "disjoint: empty"
    assert common(Span({0: 3}, None), Span({0: 1}, None)) == Span({0: 3}, None)


def test_equal_runs_have_no_difference():
    signals = [signal(1), signal(5, side="SELL")]
    result = diff_signals(signals, Span({0: 0}, None), list(signals), Span({0: 0}, {0: 10}))
    assert result.differences == 0 and result.same == 2


def test_only_in_each_and_changed_are_told_apart_and_out_of_range_signals_do_not_count():
    a = [signal(1), signal(2, rule="rsi_reversal"), signal(3, price=11.0), signal(4, ema=2.0), signal(99)]
    b = [signal(1), signal(3, price=12.0), signal(4, ema=2.5), signal(6, side="SELL")]
    result = diff_signals(a, Span({0: 0}, None), b, Span({0: 0}, {0: 10}))
    assert [s.lineage.offset for s in result.only_a] == [2]
    assert [s.lineage.offset for s in result.only_b] == [6]
    assert [(x.price, y.price) for x, y in result.changed] == [(11.0, 12.0), (10.0, 10.0)]
    assert result.same == 1 and result.differences == 4
    report = result.to_json()
    assert report["differences"] == 4 and report["range"] == {"start": {"0": 0}, "end": {"0": 10}}


def test_the_other_side_at_the_same_position_is_a_change():
    result = diff_signals([signal(7)], Span({0: 0}, None), [signal(7, side="SELL")], Span({0: 0}, None))
    assert len(result.changed) == 1 and not result.only_a and not result.only_b


def outcome(of: Signal, horizon: str, matured_at: int, gross: float) -> SignalOutcome:
    """The outcome of ``of`` at ``horizon``, matured by the tick at offset ``matured_at``."""
    return SignalOutcome(outcome_id=make_outcome_id(of.signal_id, horizon), signal_id=of.signal_id, symbol=of.symbol,
                         venue=of.venue, strategy=of.strategy, strategy_version=of.strategy_version,
                         timeframe=of.timeframe, side=of.side, horizon=horizon, signal_price=of.price,
                         signal_ts=of.ts_event, price=of.price * (1 + gross), return_gross=gross, return_net=gross,
                         fee=0.0, ts_event=of.ts_event, ts_init=of.ts_event,
                         lineage=Lineage(topic="ticks", partition=of.lineage.partition, offset=matured_at))


def test_scorecards_side_by_side_over_the_common_range_only():
    # A runs over 0-100 (open), B over 0-20: only signals at ticks < 20 whose outcome matured before 20 count.
    a_signals = [signal(1), signal(5, side="SELL"), signal(8, rule="rsi_reversal"), signal(30)]
    b_signals = [signal(1), signal(5, side="SELL", price=10.5), signal(12)]
    a_outcomes = [outcome(a_signals[0], "1m", 6, 0.02), outcome(a_signals[0], "5m", 25, 0.05),  # 5m: after B's end
                  outcome(a_signals[1], "1m", 9, -0.01), outcome(a_signals[2], "1m", 15, 0.03),
                  outcome(a_signals[3], "1m", 40, 0.04)]  # a signal outside the common range
    b_outcomes = [outcome(b_signals[0], "1m", 6, 0.02), outcome(b_signals[1], "1m", 9, -0.03),
                  outcome(b_signals[2], "1m", 19, 0.01), outcome(b_signals[0], "1m", 6, 0.02)]  # read twice
    pairs = diff_scorecards(a_signals, a_outcomes, Span({0: 0}, None), b_signals, b_outcomes, Span({0: 0}, {0: 20}))
    expected_a = {c.key: c for c in Scorecards().extend([a_outcomes[0], a_outcomes[2], a_outcomes[3]]).cards()}
    expected_b = {c.key: c for c in Scorecards().extend(b_outcomes[:3]).cards()}
    assert [(p.key.strategy, p.key.horizon) for p in pairs] == [("ema_cross", "1m"), ("rsi_reversal", "1m")]
    assert {p.key: p.a for p in pairs if p.a} == expected_a
    assert {p.key: p.b for p in pairs if p.b} == expected_b
    ema, rsi = pairs
    assert ema.a is not None and ema.b is not None and (ema.a.outcomes, ema.b.outcomes) == (2, 3)
    assert rsi.b is None and rsi.to_json()["b"] is None
    report = ema.to_json()
    assert report["symbol"] == "BTC-USD" and report["a"]["outcomes"] == 2 and report["b"]["hit_rate"] == 2 / 3


def test_an_outcome_whose_signal_is_unknown_is_not_scored():
    lost = signal(3)
    pairs = diff_scorecards([], [outcome(lost, "1m", 4, 0.01)], Span({0: 0}, None), [], [], Span({0: 0}, None))
    assert pairs == []


def tick(ts: datetime, *, symbol: str = "BTC-USD", venue: str = "test", price: float = 10.0) -> Tick:
    return Tick(symbol=symbol, venue=venue, price=price, volume=1.0, ts_event=ts, ts_init=ts, source=venue,
                source_id=f"{symbol}-{ts.isoformat()}")


def test_a_window_closes_at_its_end_plus_grace_or_at_its_instruments_next_day():
    config = PipelineConfig(grace_ms=5_000)
    end = T0 + timedelta(hours=3, minutes=2)
    fired = signal(1).model_copy(update={"timeframe": "1m", "ts_event": end})
    assert not closes_window(fired, tick(end + timedelta(seconds=5, microseconds=-1)), config)
    assert closes_window(fired, tick(end + timedelta(seconds=5)), config)
    assert closes_window(fired, tick(end + timedelta(seconds=5), symbol="ETH-USD"), config), "any instrument's"
    assert not closes_window(fired, tick(end + timedelta(minutes=5), venue="other"), config), "its venue's only"
    assert not closes_window(fired, tick(end + timedelta(minutes=5), price=5e12), config), "a rejected tick"
    midnight = T0 + timedelta(days=1)
    at_midnight = fired.model_copy(update={"ts_event": midnight})
    assert closes_window(at_midnight, tick(midnight), config), "its instrument's first tick of the next day"
    assert not closes_window(at_midnight, tick(midnight, symbol="ETH-USD"), config), "another's: grace first"


def test_accepts_is_the_bounds_test_of_the_pipeline():
    config = PipelineConfig()
    for price, volume in ((10.0, 1.0), (5e12, 1.0), (1e-13, 1.0), (10.0, 1e16), (10.0, None)):
        given = tick(T0).model_copy(update={"price": price, "volume": volume})
        output = SymbolProcessor(config, Instrument("BTC-USD", "test")).process(
            given, Lineage(topic="ticks", partition=0, offset=0))
        assert config.accepts(given) == (not output.rejections), (price, volume)


def test_a_candle_signal_fired_after_a_runs_end_is_unclosed_not_a_difference():
    """A 1m signal's tick (its window's last) lies before the run's end, the tick that closed the window after it:
    live fired it, the run could not (likely CI's failure of 2026-12-07). Real pipeline over the synthetic log."""
    records = [Record(topic="ticks", partition=0, offset=offset, key=key, value=value, timestamp_ms=0)
               for offset, (key, value) in enumerate(synthetic_log(("BTC-USD", "ETH-USD", "SOL-USD"), 1_500,
                                                                   T0, timedelta(seconds=7), seed=5))]
    configs = PipelineConfigs(DEFAULT_STRATEGY, candle_timeframes=("1m",), grace_ms=5_000, live_update_ms=1_000)
    closes = window_closes(records, PipelineConfig(grace_ms=5_000))
    live = [item[3] for item in reference_events(records, configs, stream_time=True).signals]
    fired = next(s for s in live if s.timeframe == "1m" and s.lineage.offset > 300)
    closer = next(r.offset for r in records if r.offset > fired.lineage.offset
                  and closes(fired, Span({0: 0}, {0: r.offset + 1})))

    def run_to(end: int) -> list[Signal]:
        kept = [r for r in records if r.offset < end]
        return [item[3] for item in reference_events(kept, configs, stream_time=True).signals]

    everything, stopped = Span({0: 0}, None), Span({0: 0}, {0: fired.lineage.offset + 1})
    before_close = run_to(fired.lineage.offset + 1)
    assert fired not in before_close
    assert diff_signals(live, everything, before_close, stopped).only_a == [fired], "without closes: a difference"
    result = diff_signals(live, everything, before_close, stopped, closes)
    assert result.differences == 0 and result.unclosed_a == [fired] and result.same > 0
    assert result.to_json()["unclosed_a"][0]["signal_id"] == fired.signal_id
    # Ended just before the closing tick: the same; with it, the run fired the signal too.
    assert diff_signals(live, everything, run_to(closer), Span({0: 0}, {0: closer}), closes).unclosed_a == [fired]
    closed = diff_signals(live, everything, run_to(closer + 1), Span({0: 0}, {0: closer + 1}), closes)
    assert closed.differences == 0 and not closed.unclosed_a and fired.signal_id in {
        s.signal_id for s in run_to(closer + 1)}
    # A run whose input closed the window but that has no such signal: a real difference.
    missing = [s for s in run_to(closer + 1) if s.signal_id != fired.signal_id]
    assert diff_signals(live, everything, missing, Span({0: 0}, {0: closer + 1}), closes).only_a == [fired]
