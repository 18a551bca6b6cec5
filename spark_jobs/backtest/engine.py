"""Trade simulation on BUY/SELL signals: pure domain logic (no I/O, no clock, no pandas).

Called by ``stockstream backtest`` (:mod:`spark_jobs.backtest.run`) once per symbol with the
symbol's price path and its signals in log order; the same inputs always give the same result.

The model (docs/spark.md states it with the figures):

- **Fills** at the signal's price moved against us by ``slippage_rate`` (a buy pays
  ``p·(1+s)``, a sell gets ``p·(1−s)``), at the signal's event time.
- **Fees** ``fee_rate`` of the traded notional, on every side (entry and exit).
- **Sizing**: all in. From flat with equity E, a long buys and a short sells ``E / (P·(1+f))``
  units, so the notional plus its fee is exactly E.
- **Positions**: ``long_only``: BUY opens a long, SELL closes it. ``long_short``: BUY closes a
  short and opens a long, SELL closes a long and opens a short. A signal in the direction
  already held is ignored.
- **End of the range**: an open position is closed at the last price (fees and slippage
  included) so the total return is realised; the trade is marked ``at_end``.
- **Equity** starts at ``initial_capital`` and is marked to market at every price point:
  ``cash + units·price``. Liability is limited: equity never goes below zero (a short that
  loses more than the account is liquidated at zero), and a bust account opens nothing more.
- **Metrics**: total return, max drawdown (largest peak-to-trough fall of equity, a fraction),
  Sharpe (mean/σ of equity returns sampled every ``sharpe_interval_s``, annualised over a
  365-day year, risk-free 0; None with fewer than two returns or σ = 0), exposure (share of
  event time with a position), win rate (share of closed trades with a positive net return).
- **Buy and hold** is the same simulation with one BUY at the first price point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

BUY, SELL = "BUY", "SELL"
Mode = Literal["long_only", "long_short"]
YEAR_S = 365 * 86_400


@dataclass(frozen=True)
class BacktestConfig:
    fee_rate: float = 0.001
    slippage_rate: float = 0.0
    mode: Mode = "long_only"
    initial_capital: float = 1.0
    sharpe_interval_s: float = 3_600.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.fee_rate < 1.0:
            raise ValueError("fee rate must be in [0, 1)")
        if not 0.0 <= self.slippage_rate < 1.0:
            raise ValueError("slippage rate must be in [0, 1)")
        if not (math.isfinite(self.initial_capital) and self.initial_capital > 0):
            raise ValueError("initial capital must be positive")
        if not self.sharpe_interval_s > 0:
            raise ValueError("the Sharpe sampling interval must be positive")
        if self.mode not in ("long_only", "long_short"):
            raise ValueError("mode is long_only or long_short")


@dataclass(frozen=True)
class PricePoint:
    ts_us: int
    price: float


@dataclass(frozen=True)
class SignalPoint:
    ts_us: int
    side: str  # BUY or SELL
    price: float
    rule: str = ""


@dataclass(frozen=True)
class Trade:
    """One round trip. ``net_return`` is exit proceeds over entry cost, minus 1 (fees included)."""

    direction: Literal["long", "short"]
    entry_ts_us: int
    entry_price: float  # fill price (slippage included)
    exit_ts_us: int
    exit_price: float
    units: float
    fees: float
    pnl: float
    net_return: float
    entry_rule: str
    exit_rule: str
    at_end: bool


@dataclass(frozen=True)
class Metrics:
    trades: int
    win_rate: float | None
    total_return: float
    max_drawdown: float
    sharpe: float | None
    exposure: float
    final_equity: float


@dataclass(frozen=True)
class BacktestResult:
    trades: tuple[Trade, ...]
    equity: tuple[tuple[int, float], ...]  # (event time µs, equity) after each price point and fill
    metrics: Metrics
    buy_and_hold: Metrics
    buy_and_hold_equity: tuple[tuple[int, float], ...] = field(default=())


@dataclass
class _Book:
    config: BacktestConfig
    cash: float
    units: float = 0.0
    entry_ts: int = 0
    entry_price: float = 0.0
    entry_cost: float = 0.0  # cash committed at entry (long) or margin equity (short), fees included
    entry_fee: float = 0.0
    entry_rule: str = ""
    trades: list[Trade] = field(default_factory=list)

    @property
    def direction(self) -> int:
        return (self.units > 0) - (self.units < 0)

    def equity(self, price: float) -> float:
        return max(0.0, self.cash + self.units * price)

    def open(self, direction: int, ts: int, price: float, rule: str) -> None:
        if self.cash <= 0.0:
            return  # bust (a short that went badly): nothing left to trade with
        fee, slip = self.config.fee_rate, self.config.slippage_rate
        fill = price * (1 + slip) if direction > 0 else price * (1 - slip)
        equity = self.cash  # flat: all equity is cash
        units = equity / (fill * (1 + fee))
        paid_fee = units * fill * fee
        self.cash -= direction * units * fill + paid_fee
        self.units = direction * units
        self.entry_ts, self.entry_price, self.entry_cost = ts, fill, equity
        self.entry_fee, self.entry_rule = paid_fee, rule

    def close(self, ts: int, price: float, rule: str, at_end: bool = False) -> None:
        fee, slip = self.config.fee_rate, self.config.slippage_rate
        direction = self.direction
        fill = price * (1 - slip) if direction > 0 else price * (1 + slip)
        units = abs(self.units)
        paid_fee = units * fill * fee
        self.cash = max(0.0, self.cash + direction * units * fill - paid_fee)  # liquidated at zero at worst
        self.units = 0.0
        pnl = self.cash - self.entry_cost
        self.trades.append(Trade(
            direction="long" if direction > 0 else "short", entry_ts_us=self.entry_ts,
            entry_price=self.entry_price, exit_ts_us=ts, exit_price=fill, units=units,
            fees=self.entry_fee + paid_fee, pnl=pnl, net_return=self.cash / self.entry_cost - 1.0,
            entry_rule=self.entry_rule, exit_rule=rule, at_end=at_end,
        ))


def _apply(book: _Book, signal: SignalPoint) -> None:
    wanted = 1 if signal.side == BUY else -1
    held = book.direction
    if held == wanted:
        return
    if held != 0:
        book.close(signal.ts_us, signal.price, signal.rule)
    if wanted > 0 or book.config.mode == "long_short":
        book.open(wanted, signal.ts_us, signal.price, signal.rule)


def _max_drawdown(equity: Sequence[tuple[int, float]]) -> float:
    peak, worst = -math.inf, 0.0
    for _, value in equity:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak)
    return worst


def _sharpe(equity: Sequence[tuple[int, float]], interval_s: float) -> float | None:
    """Annualised Sharpe of equity returns on a fixed grid (the last equity at or before each tick of it)."""
    if len(equity) < 2:
        return None
    step = round(interval_s * 1e6)
    start, end = equity[0][0], equity[-1][0]
    samples: list[float] = []
    index = 0
    moment = start
    while moment <= end:
        while index + 1 < len(equity) and equity[index + 1][0] <= moment:
            index += 1
        samples.append(equity[index][1])
        moment += step
    if samples[-1] != equity[-1][1]:
        samples.append(equity[-1][1])
    returns = [b / a - 1.0 for a, b in zip(samples, samples[1:], strict=False) if a > 0]
    if len(returns) < 2:
        return None
    mean = math.fsum(returns) / len(returns)
    variance = math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if variance <= 0.0:
        return None
    return mean / math.sqrt(variance) * math.sqrt(YEAR_S / interval_s)


def simulate(prices: Sequence[PricePoint], signals: Sequence[SignalPoint], config: BacktestConfig,
             with_buy_and_hold: bool = True) -> BacktestResult:
    """Trade ``signals`` over ``prices`` (both in event order; signals at a price point's time fill first,
    signals after the last price point are ignored)."""
    book = _Book(config, config.initial_capital)
    equity: list[tuple[int, float]] = []
    exposed_us = 0
    last_ts: int | None = None

    def advance(moment: int) -> None:
        nonlocal exposed_us, last_ts
        if last_ts is not None and book.direction:
            exposed_us += max(0, moment - last_ts)
        last_ts = moment if last_ts is None else max(last_ts, moment)

    starts = [moment for moment in (prices[0].ts_us if prices else None, signals[0].ts_us if signals else None)
              if moment is not None]
    if starts:
        equity.append((min(starts), config.initial_capital))
    next_signal = 0
    for point in prices:
        while next_signal < len(signals) and signals[next_signal].ts_us <= point.ts_us:
            advance(signals[next_signal].ts_us)
            _apply(book, signals[next_signal])
            next_signal += 1
        advance(point.ts_us)
        equity.append((point.ts_us, book.equity(point.price)))
    if prices and book.direction:
        final = prices[-1]
        book.close(final.ts_us, final.price, "end of range", at_end=True)
        equity.append((final.ts_us, book.cash))
    span = prices[-1].ts_us - prices[0].ts_us if prices else 0
    final_equity = equity[-1][1] if equity else config.initial_capital
    wins = [trade for trade in book.trades if trade.net_return > 0]
    metrics = Metrics(
        trades=len(book.trades), win_rate=len(wins) / len(book.trades) if book.trades else None,
        total_return=final_equity / config.initial_capital - 1.0, max_drawdown=_max_drawdown(equity),
        sharpe=_sharpe(equity, config.sharpe_interval_s), exposure=exposed_us / span if span > 0 else 0.0,
        final_equity=final_equity,
    )
    if not with_buy_and_hold:
        return BacktestResult(tuple(book.trades), tuple(equity), metrics, metrics)
    hold = simulate(prices, [SignalPoint(prices[0].ts_us, BUY, prices[0].price, "buy_and_hold")] if prices else [],
                    replace(config, mode="long_only"), with_buy_and_hold=False)
    return BacktestResult(tuple(book.trades), tuple(equity), metrics, hold.metrics, hold.equity)
