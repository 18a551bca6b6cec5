"""The bar simulation (spark_jobs/backtest/simulate.py) on hand-computed cases.

Each case states the bars, the signals and the trades worked out by hand from the model in the
module docstring: next-bar open fills, fees and slippage, sizing, gaps through a stop, a stop
inside a candle, both stop and take-profit in one candle (the stop wins), trailing stops, shorts,
a bust account.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_jobs.backtest.simulate import (
    EXIT_END,
    EXIT_OPEN,
    EXIT_SIGNAL,
    EXIT_STOP,
    EXIT_TAKE_PROFIT,
    EXIT_TRAILING,
    Level,
    SimulationConfig,
    simulate,
    summary,
)


def bars(rows):
    """(open, high, low, close) columns from rows of four numbers."""
    array = np.array(rows, dtype=float)
    return array[:, 0], array[:, 1], array[:, 2], array[:, 3]


def signals(length, **at):
    out = np.zeros(length, dtype=np.int8)
    for index, side in at.items():
        out[int(index.removeprefix("i"))] = side
    return out


def test_a_signal_fills_at_the_next_bars_open_with_fees_and_slippage():
    o, h, lo, c = bars([(10, 10, 10, 10), (11, 12, 10, 11.5), (12, 13, 11, 12.5), (14, 14, 13, 13.5)])
    config = SimulationConfig(fee=0.01, slippage=0.001)
    result = simulate(o, h, lo, c, signals(4, i0=1, i1=-1), config)
    entry = 11 * 1.001
    units = 1.0 / (entry * 1.01)
    exit_fill = 12 * 0.999
    trade = {name: values[0] for name, values in result.trades.items()}
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_reason"]) == (1, 2, EXIT_SIGNAL)
    assert trade["entry_price"] == pytest.approx(entry, rel=1e-15)
    assert trade["exit_price"] == pytest.approx(exit_fill, rel=1e-15)
    final = units * exit_fill * (1 - 0.01)
    assert result.final_equity == pytest.approx(final, rel=1e-12)
    assert trade["pnl"] == pytest.approx(final - 1.0, rel=1e-12)
    # marked at the close of the entry bar: cash 0 + units · 11.5
    assert result.equity[1] == pytest.approx(units * 11.5, rel=1e-12)
    assert result.equity[0] == 1.0 and result.equity[3] == result.final_equity


def test_a_signal_on_the_last_bar_is_not_filled_and_an_open_position_closes_at_the_end():
    o, h, lo, c = bars([(10, 10, 10, 10), (10, 11, 9, 11), (12, 12, 12, 12)])
    result = simulate(o, h, lo, c, signals(3, i0=1, i2=-1), SimulationConfig(fee=0.0))
    assert result.trade_count == 1
    assert result.trades["exit_reason"][0] == EXIT_END
    assert result.trades["exit_price"][0] == 12.0
    assert result.final_equity == pytest.approx(12.0 / 10.0)


def test_without_close_at_end_the_open_position_is_a_trade_marked_at_the_last_close():
    """Its row was never written (uninitialised memory in ``trades``; seen as a NaN cast warning)."""
    o, h, lo, c = bars([(10, 10, 10, 10), (10, 11, 9, 11), (12, 12, 12, 12.5)])
    result = simulate(o, h, lo, c, signals(3, i0=1), SimulationConfig(fee=0.01, close_at_end=False))
    assert result.trade_count == 1
    trade = {name: values[0] for name, values in result.trades.items()}
    assert (trade["direction"], trade["entry_bar"], trade["exit_bar"], trade["exit_reason"]) == (1, 1, 2, EXIT_OPEN)
    assert (trade["entry_price"], trade["exit_price"]) == (10.0, 12.5)
    units = 1.0 / (10.0 * 1.01)
    assert trade["units"] == pytest.approx(units, rel=1e-15)
    assert trade["fees"] == pytest.approx(units * 10.0 * 0.01, rel=1e-12)  # the entry's only: no exit yet
    assert result.final_equity == pytest.approx(units * 12.5, rel=1e-12)  # marked, no exit fee
    assert 1.0 + trade["pnl"] == pytest.approx(result.final_equity, rel=1e-12)
    assert 1.0 + trade["net_return"] == pytest.approx(result.final_equity, rel=1e-12)


def test_a_gap_through_the_stop_exits_at_the_open_not_at_the_stop():
    # entry at 100 (bar 1 open); stop 5 % → 95; bar 2 opens at 90, below the stop: the fill is 90
    o, h, lo, c = bars([(100, 100, 100, 100), (100, 101, 99, 100), (90, 92, 88, 91), (91, 91, 91, 91)])
    config = SimulationConfig(fee=0.0, stop_loss=Level("percent", 0.05))
    result = simulate(o, h, lo, c, signals(4, i0=1), config)
    assert result.trades["exit_reason"][0] == EXIT_STOP
    assert result.trades["exit_bar"][0] == 2
    assert result.trades["exit_price"][0] == 90.0
    assert result.final_equity == pytest.approx(0.9)


def test_a_stop_hit_inside_a_candle_exits_at_the_stop_level():
    o, h, lo, c = bars([(100, 100, 100, 100), (100, 101, 99, 100), (99, 100, 94, 98), (98, 98, 98, 98)])
    config = SimulationConfig(fee=0.0, stop_loss=Level("percent", 0.05))
    result = simulate(o, h, lo, c, signals(4, i0=1), config)
    assert (result.trades["exit_bar"][0], result.trades["exit_reason"][0]) == (2, EXIT_STOP)
    assert result.trades["exit_price"][0] == pytest.approx(95.0)
    assert result.final_equity == pytest.approx(0.95)


def test_both_stop_and_take_profit_in_one_candle_the_stop_wins():
    # stop 95, take-profit 110; bar 2 ranges 94..111: both reached, the documented rule takes the stop
    o, h, lo, c = bars([(100, 100, 100, 100), (100, 101, 99, 100), (100, 111, 94, 105), (105, 105, 105, 105)])
    config = SimulationConfig(fee=0.0, stop_loss=Level("percent", 0.05), take_profit=Level("percent", 0.10))
    result = simulate(o, h, lo, c, signals(4, i0=1), config)
    assert result.trades["exit_reason"][0] == EXIT_STOP
    assert result.trades["exit_price"][0] == pytest.approx(95.0)


def test_take_profit_inside_a_candle_and_a_gap_above_it():
    o, h, lo, c = bars([(100, 100, 100, 100), (100, 101, 99, 100), (104, 111, 103, 108), (108, 108, 108, 108)])
    config = SimulationConfig(fee=0.0, take_profit=Level("percent", 0.10))
    inside = simulate(o, h, lo, c, signals(4, i0=1), config)
    assert (inside.trades["exit_reason"][0], inside.trades["exit_price"][0]) == (EXIT_TAKE_PROFIT, pytest.approx(110.0))
    o2, h2, lo2, c2 = bars([(100, 100, 100, 100), (100, 101, 99, 100), (115, 116, 113, 114), (114, 114, 114, 114)])
    gapped = simulate(o2, h2, lo2, c2, signals(4, i0=1), config)
    assert (gapped.trades["exit_reason"][0], gapped.trades["exit_price"][0]) == (EXIT_TAKE_PROFIT, 115.0)


def test_a_trailing_stop_follows_the_highest_high_up_to_the_previous_bar():
    # entry 100; highs 104 (bar 1), 110 (bar 2); trailing 5 %: level after bar 2 = 104.5; bar 3 low 104 → exit 104.5
    o, h, lo, c = bars([(100, 100, 100, 100), (100, 104, 99, 103), (103, 110, 102, 109), (108, 108, 104, 105)])
    config = SimulationConfig(fee=0.0, trailing_stop=Level("percent", 0.05))
    result = simulate(o, h, lo, c, signals(4, i0=1), config)
    assert (result.trades["exit_bar"][0], result.trades["exit_reason"][0]) == (3, EXIT_TRAILING)
    assert result.trades["exit_price"][0] == pytest.approx(104.5)


def test_atr_stops_use_the_atr_of_the_signal_bar():
    o, h, lo, c = bars([(100, 100, 100, 100), (100, 101, 99, 100), (99, 100, 95, 97), (97, 97, 97, 97)])
    atr = np.array([2.0, 9.0, 9.0, 9.0])  # the signal bar's ATR (2) sets the stop: 100 − 2·2 = 96
    config = SimulationConfig(fee=0.0, stop_loss=Level("atr", 2.0))
    result = simulate(o, h, lo, c, signals(4, i0=1), config, atr=atr)
    assert result.trades["exit_price"][0] == pytest.approx(96.0)


def test_long_short_reverses_and_a_short_profits_from_a_fall():
    o, h, lo, c = bars([(10, 10, 10, 10), (10, 10, 10, 10), (8, 8, 8, 8), (8, 8, 8, 8), (10, 10, 10, 10)])
    config = SimulationConfig(fee=0.0, long_short=True)
    result = simulate(o, h, lo, c, signals(5, i0=-1, i2=1), config)
    # short 0.1 units at 10 (bar 1), cover at 8 (bar 3): +0.2; long 1.2/8 = 0.15 units to the end at 10: 1.5
    assert list(result.trades["direction"]) == [-1, 1]
    assert result.trades["pnl"][0] == pytest.approx(0.2)
    assert result.final_equity == pytest.approx(1.5)


def test_long_only_ignores_sells_when_flat_and_repeated_buys():
    o, h, lo, c = bars([(10, 10, 10, 10)] * 3 + [(12, 12, 12, 12)] * 3)
    result = simulate(o, h, lo, c, signals(6, i0=-1, i1=1, i2=1, i4=-1), SimulationConfig(fee=0.0))
    assert result.trade_count == 1
    assert result.final_equity == pytest.approx(1.2)


def test_fixed_notional_and_fraction_sizing():
    o, h, lo, c = bars([(10, 10, 10, 10), (10, 10, 10, 10), (20, 20, 20, 20)])
    half = simulate(o, h, lo, c, signals(3, i0=1), SimulationConfig(fee=0.0, size=0.5))
    assert half.final_equity == pytest.approx(1.5)
    notional = simulate(o, h, lo, c, signals(3, i0=1), SimulationConfig(fee=0.0, sizing="notional", size=0.25,
                                                                       initial_capital=1.0))
    assert notional.final_equity == pytest.approx(1.25)


def test_a_short_that_loses_everything_busts_and_opens_nothing_more():
    o, h, lo, c = bars([(10, 10, 10, 10), (10, 10, 10, 10), (25, 25, 25, 25), (25, 25, 25, 25), (5, 5, 5, 5)])
    result = simulate(o, h, lo, c, signals(5, i0=-1, i2=1), SimulationConfig(fee=0.0, long_short=True))
    assert result.final_equity == 0.0
    assert result.trade_count == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(50, 150), min_size=3, max_size=80), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.001]))
def test_summary_equals_the_recorded_simulation(closes, seed, fee):
    rng = np.random.default_rng(seed)
    close = np.array(closes)
    open_ = close * (1 + rng.normal(0, 0.01, len(close)))
    signal = rng.choice(np.array([-1, 0, 0, 1], dtype=np.int8), len(close))
    config = SimulationConfig(fee=fee, close_at_end=bool(seed % 2))
    recorded = simulate(open_, close, close, close, signal, config)
    count, value, _ = summary(open_, close, signal, config)
    assert value == recorded.final_equity or (not config.close_at_end and math.isclose(value, recorded.final_equity))
    if config.close_at_end:
        assert count == recorded.trade_count
    # equity is the product of the round trips' factors when everything is closed (all in, fraction 1)
    if config.close_at_end:
        assert recorded.final_equity == pytest.approx(float(np.prod(1 + recorded.trades["net_return"])), rel=1e-9)
