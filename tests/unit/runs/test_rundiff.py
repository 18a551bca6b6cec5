"""``runs diff``: positions only in A, only in B, changed, and scorecards side by side, over the common range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.core.rundiff import Span, common, diff_scorecards, diff_signals
from processors.core.scorecard import Scorecards
from schemas.events import Lineage, Signal, SignalOutcome, make_outcome_id

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
