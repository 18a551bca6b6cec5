"""The trade simulation: hand-computed cases and properties (no I/O)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_jobs.backtest.engine import BUY, SELL, BacktestConfig, PricePoint, SignalPoint, simulate

HOUR = 3_600_000_000


def _prices(*values: float) -> list[PricePoint]:
    return [PricePoint(i * HOUR, value) for i, value in enumerate(values)]


def _signal(hour: int, side: str, price: float) -> SignalPoint:
    return SignalPoint(hour * HOUR, side, price, "rule")


def test_a_long_round_trip_pays_the_fee_on_both_sides():
    result = simulate(_prices(100, 105, 110), [_signal(0, BUY, 100), _signal(2, SELL, 110)], BacktestConfig(fee_rate=0.001))
    # units = 1 / (100·1.001); proceeds = units·110·0.999
    assert result.metrics.total_return == pytest.approx(110 * 0.999 / (100 * 1.001) - 1, rel=1e-12)
    (trade,) = result.trades
    assert trade.direction == "long" and not trade.at_end and trade.net_return > 0
    assert trade.fees == pytest.approx(trade.units * (100 + 110) * 0.001, rel=1e-12)
    assert result.metrics.trades == 1 and result.metrics.win_rate == 1.0 and result.metrics.exposure == 1.0


def test_slippage_moves_both_fills_against_the_trader():
    config = BacktestConfig(fee_rate=0.0, slippage_rate=0.001)
    result = simulate(_prices(100, 110), [_signal(0, BUY, 100), _signal(1, SELL, 110)], config)
    assert result.trades[0].entry_price == pytest.approx(100.1)
    assert result.trades[0].exit_price == pytest.approx(109.89)
    assert result.metrics.total_return == pytest.approx(109.89 / 100.1 - 1, rel=1e-12)


def test_a_short_gains_when_the_price_falls():
    config = BacktestConfig(fee_rate=0.0, mode="long_short")
    result = simulate(_prices(100, 95, 90), [_signal(0, SELL, 100), _signal(2, BUY, 90)], config)
    short, long_ = result.trades
    # Short 0.01 units at 100 (cash 2), buy back at 90: cash 1.1; then a long opened at 90, closed at the end.
    assert short.direction == "short" and short.net_return == pytest.approx(0.1)
    assert long_.direction == "long" and long_.at_end and long_.net_return == pytest.approx(0.0)
    assert result.metrics.total_return == pytest.approx(0.1)


def test_long_only_ignores_sells_when_flat_and_repeated_buys():
    signals = [_signal(0, SELL, 100), _signal(1, BUY, 100), _signal(2, BUY, 120), _signal(3, SELL, 130)]
    result = simulate(_prices(100, 100, 120, 130), signals, BacktestConfig(fee_rate=0.0))
    assert len(result.trades) == 1
    assert result.trades[0].entry_price == 100 and result.trades[0].exit_price == 130
    assert result.metrics.exposure == pytest.approx(2 / 3)


def test_an_open_position_is_closed_at_the_last_price():
    result = simulate(_prices(100, 120, 90, 130), [_signal(0, BUY, 100)], BacktestConfig(fee_rate=0.0))
    assert result.trades[0].at_end and result.trades[0].exit_price == 130
    assert result.metrics.max_drawdown == pytest.approx(0.25)  # 120 → 90
    assert result.metrics.total_return == pytest.approx(0.3)
    assert result.buy_and_hold == result.metrics  # one BUY at the first price is buy-and-hold


def test_buy_and_hold_covers_the_same_range():
    result = simulate(_prices(100, 80, 90), [_signal(1, BUY, 80)], BacktestConfig(fee_rate=0.0))
    assert result.metrics.total_return == pytest.approx(90 / 80 - 1)
    assert result.buy_and_hold.total_return == pytest.approx(-0.1)
    assert result.buy_and_hold.max_drawdown == pytest.approx(0.2)


def test_sharpe_of_a_known_equity_path():
    prices = _prices(100, 101, 100, 102, 101)
    result = simulate(prices, [_signal(0, BUY, 100)], BacktestConfig(fee_rate=0.0, sharpe_interval_s=3600))
    returns = [b / a - 1 for a, b in zip([100, 101, 100, 102], [101, 100, 102, 101], strict=True)]
    mean = sum(returns) / 4
    sigma = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)
    assert result.metrics.sharpe == pytest.approx(mean / sigma * math.sqrt(365 * 24), rel=1e-9)
    flat = simulate(_prices(100, 100, 100), [_signal(0, BUY, 100)], BacktestConfig(fee_rate=0.0))
    assert flat.metrics.sharpe is None  # no variance


def test_config_is_validated():
    for bad in ({"fee_rate": -0.1}, {"slippage_rate": 1.0}, {"initial_capital": 0.0}, {"mode": "both"},
                {"sharpe_interval_s": 0.0}):
        with pytest.raises(ValueError):
            BacktestConfig(**bad)


price_paths = st.lists(st.floats(min_value=50, max_value=150, allow_nan=False), min_size=2, max_size=60)


@st.composite
def markets(draw):
    values = draw(price_paths)
    prices = _prices(*values)
    picks = draw(st.lists(st.tuples(st.integers(0, len(values) - 1), st.sampled_from([BUY, SELL])), max_size=20))
    signals = sorted((_signal(hour, side, values[hour]) for hour, side in picks), key=lambda s: s.ts_us)
    return prices, signals


@settings(max_examples=200, deadline=None)
@given(market=markets(), mode=st.sampled_from(["long_only", "long_short"]))
def test_no_signals_means_no_trades_and_no_return(market, mode):
    prices, _ = market
    result = simulate(prices, [], BacktestConfig(mode=mode))
    assert result.trades == () and result.metrics.total_return == 0.0
    assert result.metrics.exposure == 0.0 and result.metrics.max_drawdown == 0.0


@settings(max_examples=200, deadline=None)
@given(market=markets(), mode=st.sampled_from(["long_only", "long_short"]),
       low=st.floats(0, 0.01), extra=st.floats(0.0001, 0.01))
def test_higher_fees_or_slippage_never_raise_the_return(market, mode, low, extra):
    prices, signals = market
    base = simulate(prices, signals, BacktestConfig(fee_rate=low, mode=mode)).metrics.total_return
    dearer = simulate(prices, signals, BacktestConfig(fee_rate=low + extra, mode=mode)).metrics.total_return
    slipped = simulate(prices, signals, BacktestConfig(fee_rate=low, slippage_rate=extra, mode=mode)).metrics
    assert dearer <= base + 1e-12
    assert slipped.total_return <= base + 1e-12


@settings(max_examples=200, deadline=None)
@given(market=markets(), mode=st.sampled_from(["long_only", "long_short"]))
def test_metrics_stay_in_range_and_the_run_is_deterministic(market, mode):
    prices, signals = market
    config = BacktestConfig(fee_rate=0.001, slippage_rate=0.0005, mode=mode)
    result = simulate(prices, signals, config)
    assert result == simulate(prices, signals, config)
    metrics = result.metrics
    assert 0.0 <= metrics.exposure <= 1.0 and 0.0 <= metrics.max_drawdown
    assert metrics.win_rate is None or 0.0 <= metrics.win_rate <= 1.0
    assert metrics.trades == len(result.trades) and all(trade.exit_ts_us >= trade.entry_ts_us for trade in result.trades)
    if mode == "long_only":
        assert all(value >= 0 for _, value in result.equity) and metrics.max_drawdown <= 1.0
    # Closed trades chain: the final equity is the product of their return factors.
    product = math.prod(1 + trade.net_return for trade in result.trades)
    assert metrics.final_equity == pytest.approx(product, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.just(100.0), min_size=2, max_size=20), market=markets())
def test_a_flat_market_without_costs_returns_nothing(values, market):
    _, signals = market
    prices = _prices(*values)
    inside = [s for s in signals if s.ts_us <= prices[-1].ts_us]
    flat = [SignalPoint(s.ts_us, s.side, 100.0, s.rule) for s in inside]
    result = simulate(prices, flat, BacktestConfig(fee_rate=0.0, mode="long_short"))
    assert result.metrics.total_return == pytest.approx(0.0, abs=1e-12)
