"""``runs diff``: positions only in A, only in B, changed, over the common range of the two runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.core.rundiff import Span, common, diff_signals
from schemas.events import Lineage, Signal

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
