"""The bar/tick trade simulation of backtests and sweeps: next-bar fills, costs, sizing, stops (numba loop).

Called by :mod:`spark_jobs.backtest.portfolio` (one instrument at a time) and by the sweep
(:mod:`spark_jobs.sweep.job`, thousands of times per task with ``record=False``). Pure and
deterministic; numba compiles it where installed (:mod:`processors.core.vector.jit`).

The model (docs/spark.md, "Backtest model"):

- **No look-ahead.** A signal on bar i (a tick, or a candle at its close) is an order filled at the
  **open of bar i + 1** (for ticks: the next tick's price). A signal on the last bar is not filled.
- **Costs.** Fills move against the trader by ``slippage`` (buy ``p·(1+s)``, sell ``p·(1−s)``); a fee of
  ``fee`` × notional is paid on every fill.
- **Sizing.** From flat with equity E: ``fraction`` of E (1 = all in), or a ``notional`` (capped at E);
  units = amount / (fill·(1+fee)), so amount and fee together are the amount committed.
- **Positions.** One per instrument. long-only: BUY opens, SELL closes. long-short: BUY closes a short
  and opens a long, SELL the reverse. A signal in the held direction is ignored.
- **Stops**, from the entry bar on (the entry is at that bar's open, the bar's range comes after it):
  stop-loss and take-profit at a fixed % of the entry fill or at ``k × ATR`` (the ATR known at the
  signal bar); a trailing stop at % or ``k × ATR`` below the highest high (above the lowest low for a
  short) seen since entry, up to the previous bar. A bar that **opens beyond** a level exits at its
  open (a gap: the level was never traded). Otherwise a bar whose range reaches the stop exits at the
  stop level, one that reaches the take-profit at that level. **Both in one bar: the stop wins** —
  without the path inside the bar the pessimistic assumption is the honest one (the usual convention).
  Exit fills take slippage and fees like any fill. A stop exit does not cancel a pending signal.
- **End.** A position still open after the last bar is closed at its close (marked ``at_end``).
- **Equity** = cash + units × close at every bar's close; liability is limited: an account whose
  equity reaches 0 is closed out at 0 and opens nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from processors.core.vector.jit import njit

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Signals = npt.NDArray[np.int8]

LEVEL_NONE, LEVEL_PERCENT, LEVEL_ATR = 0, 1, 2
EXIT_SIGNAL, EXIT_STOP, EXIT_TAKE_PROFIT, EXIT_TRAILING, EXIT_END, EXIT_BUST, EXIT_OPEN = range(7)
EXIT_NAMES = ("signal", "stop_loss", "take_profit", "trailing_stop", "end", "bust", "open")
"""``open``: still held at the end (``close_at_end`` False), its exit the last close, without an exit fee."""
TRADE_FIELDS = ("direction", "entry_bar", "exit_bar", "entry_price", "exit_price", "units", "fees", "pnl",
                "net_return", "exit_reason")


@dataclass(frozen=True)
class Level:
    """A stop distance: ``percent`` (0.02 = 2 % of the reference price) or ``atr`` multiples; 0 = off."""

    kind: Literal["percent", "atr"] = "percent"
    value: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("percent", "atr") or not (self.value >= 0.0 and np.isfinite(self.value)):
            raise ValueError(f"bad stop level {self.kind} {self.value}")
        if self.kind == "percent" and self.value >= 1.0:
            raise ValueError("a percent stop must be below 1 (100 %)")

    def code(self) -> int:
        return LEVEL_NONE if self.value == 0.0 else (LEVEL_PERCENT if self.kind == "percent" else LEVEL_ATR)


@dataclass(frozen=True)
class SimulationConfig:
    """One instrument's trading rules (see the module docstring)."""

    fee: float = 0.001
    slippage: float = 0.0
    long_short: bool = False
    sizing: Literal["fraction", "notional"] = "fraction"
    size: float = 1.0  # fraction of equity, or a notional in account currency
    initial_capital: float = 1.0
    stop_loss: Level = Level()
    take_profit: Level = Level()
    trailing_stop: Level = Level()
    close_at_end: bool = True  # False: an open position stays marked at the last close (vectorbt's convention)

    def __post_init__(self) -> None:
        if not (0.0 <= self.fee < 1.0 and 0.0 <= self.slippage < 1.0):
            raise ValueError("fee and slippage must be in [0, 1)")
        if self.sizing not in ("fraction", "notional"):
            raise ValueError("sizing is fraction or notional")
        if not (self.size > 0.0 and np.isfinite(self.size)) or (self.sizing == "fraction" and self.size > 1.0):
            raise ValueError("size must be positive (a fraction at most 1)")
        if not (self.initial_capital > 0.0 and np.isfinite(self.initial_capital)):
            raise ValueError("initial capital must be positive")

    @property
    def uses_atr(self) -> bool:
        return LEVEL_ATR in (self.stop_loss.code(), self.take_profit.code(), self.trailing_stop.code())

    def arguments(self) -> tuple[float, float, bool, bool, float, float, int, float, int, float, int, float, bool]:
        return (self.fee, self.slippage, self.long_short, self.sizing == "notional", self.size,
                self.initial_capital, self.stop_loss.code(), self.stop_loss.value, self.take_profit.code(),
                self.take_profit.value, self.trailing_stop.code(), self.trailing_stop.value, self.close_at_end)


@dataclass(frozen=True)
class Simulation:
    """Equity at every bar's close and the round trips (arrays named by :data:`TRADE_FIELDS`)."""

    equity: Floats
    trades: dict[str, npt.NDArray[np.float64] | Ints]
    position: Floats  # units held at each bar's close (signed)

    @property
    def trade_count(self) -> int:
        return int(len(self.trades["direction"]))

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else float("nan")


@njit
def _distance(kind: int, value: float, reference: float, atr: float) -> float:  # pragma: no cover - compiled
    if kind == LEVEL_PERCENT:
        return reference * value
    if kind == LEVEL_ATR:
        return atr * value if atr == atr else np.inf  # ATR not defined yet: no level
    return np.inf


@njit
def _close_trade(trades: Floats, count: int, record: bool, units: float, fill: float, bar: int, entry_bar: int,
                 entry_price: float, entry_cost: float, entry_fee: float, paid: float,
                 reason: int) -> None:  # pragma: no cover - compiled
    if not record:
        return
    proceeds = entry_cost + (units * (fill - entry_price)) - entry_fee - paid
    trades[count, 0] = 1.0 if units > 0.0 else -1.0
    trades[count, 1] = entry_bar
    trades[count, 2] = bar
    trades[count, 3] = entry_price
    trades[count, 4] = fill
    trades[count, 5] = abs(units)
    trades[count, 6] = entry_fee + paid
    trades[count, 7] = proceeds - entry_cost
    trades[count, 8] = proceeds / entry_cost - 1.0
    trades[count, 9] = reason


@njit
def run(open_: Floats, high: Floats, low: Floats, close: Floats, signal: Signals, atr: Floats,
        fee: float, slippage: float, long_short: bool, notional: bool, size: float, capital: float,
        stop_kind: int, stop_value: float, take_kind: int, take_value: float, trail_kind: int, trail_value: float,
        close_at_end: bool, record: bool) -> tuple[Floats, Floats, Floats, int, float, Floats]:  # pragma: no cover
    """The simulation loop: (equity per bar, trades matrix, units per bar, trade count, final equity, statistics).

    ``trades`` has one row per round trip with the columns of :data:`TRADE_FIELDS`; the per-bar arrays
    and the trades are filled only when ``record`` (the sweep needs the rest alone). The trade count
    includes a position still open at the end when ``close_at_end`` is False. ``statistics`` =
    (Σ per-bar equity return, Σ its square, Σ min(return, 0)², max drawdown, bars in a position).
    """
    bars = close.shape[0]
    equity = np.empty(bars if record else 0)
    held = np.empty(bars if record else 0)
    trades = np.empty((bars // 2 + 2 if record else 0, 10))
    count = 0
    cash = capital
    units = 0.0  # signed
    entry_bar = -1
    entry_price = 0.0
    entry_cost = 0.0
    entry_fee = 0.0
    stop_level = 0.0
    take_level = 0.0
    trail_distance = np.inf
    extreme = 0.0  # highest high (long) / lowest low (short) since entry, up to the previous bar
    pending = 0
    bust = False
    value = capital
    previous = capital
    peak = capital
    statistics = np.zeros(5)
    for bar in range(bars):
        # 1. the order of the previous bar's signal, at this bar's open
        if pending != 0 and not bust:
            direction = 1 if units > 0.0 else (-1 if units < 0.0 else 0)
            wanted = pending
            pending = 0
            if wanted != direction:
                price = open_[bar]
                if direction != 0:  # close the held position
                    fill = price * (1.0 - slippage) if direction > 0 else price * (1.0 + slippage)
                    paid = abs(units) * fill * fee
                    cash += units * fill - paid
                    _close_trade(trades, count, record, units, fill, bar, entry_bar, entry_price, entry_cost,
                                 entry_fee, paid, EXIT_SIGNAL)
                    count += 1
                    units = 0.0
                    if cash <= 0.0:
                        cash = 0.0
                        bust = True
                if (wanted > 0 or long_short) and not bust:  # open the new one
                    fill = price * (1.0 + slippage) if wanted > 0 else price * (1.0 - slippage)
                    amount = min(size, cash) if notional else cash * size
                    amount_units = amount / (fill * (1.0 + fee))
                    paid = amount_units * fill * fee
                    cash -= wanted * amount_units * fill + paid
                    units = wanted * amount_units
                    entry_bar = bar
                    entry_price = fill
                    entry_cost = amount
                    entry_fee = paid
                    reference_atr = atr[bar - 1] if bar > 0 else np.nan
                    stop_level = fill - wanted * _distance(stop_kind, stop_value, fill, reference_atr)
                    take_level = fill + wanted * _distance(take_kind, take_value, fill, reference_atr)
                    trail_distance = _distance(trail_kind, trail_value, fill, reference_atr)
                    extreme = fill
        # 2. stops inside this bar (from the entry bar on)
        if units != 0.0:
            direction = 1 if units > 0.0 else -1
            if trail_kind == LEVEL_PERCENT:
                trail_level = extreme * (1.0 - trail_value) if direction > 0 else extreme * (1.0 + trail_value)
            else:
                trail_level = extreme - trail_distance if direction > 0 else extreme + trail_distance
            stop_at = stop_level
            reason = EXIT_STOP
            if (direction > 0 and trail_level > stop_at) or (direction < 0 and trail_level < stop_at):
                stop_at = trail_level
                reason = EXIT_TRAILING
            exit_price = np.nan
            opening = open_[bar]
            gap = bar > entry_bar
            if direction > 0:
                if gap and opening <= stop_at:
                    exit_price = opening
                elif gap and opening >= take_level:
                    exit_price = opening
                    reason = EXIT_TAKE_PROFIT
                elif low[bar] <= stop_at:
                    exit_price = stop_at
                elif high[bar] >= take_level:
                    exit_price = take_level
                    reason = EXIT_TAKE_PROFIT
            else:
                if gap and opening >= stop_at:
                    exit_price = opening
                elif gap and opening <= take_level:
                    exit_price = opening
                    reason = EXIT_TAKE_PROFIT
                elif high[bar] >= stop_at:
                    exit_price = stop_at
                elif low[bar] <= take_level:
                    exit_price = take_level
                    reason = EXIT_TAKE_PROFIT
            if exit_price == exit_price:
                fill = exit_price * (1.0 - slippage) if direction > 0 else exit_price * (1.0 + slippage)
                paid = abs(units) * fill * fee
                cash += units * fill - paid
                _close_trade(trades, count, record, units, fill, bar, entry_bar, entry_price, entry_cost,
                             entry_fee, paid, reason)
                count += 1
                units = 0.0
                if cash <= 0.0:
                    cash = 0.0
                    bust = True
            elif direction > 0:
                if high[bar] > extreme:
                    extreme = high[bar]
            elif low[bar] < extreme:
                extreme = low[bar]
        # 3. mark to market; an account whose equity reaches 0 is closed out at 0
        value = cash + units * close[bar]
        if value <= 0.0 and units != 0.0:
            _close_trade(trades, count, record, units, close[bar], bar, entry_bar, entry_price, entry_cost,
                         entry_fee, 0.0, EXIT_BUST)
            if record:
                trades[count, 7] = -entry_cost
                trades[count, 8] = -1.0
            count += 1
            units = 0.0
            cash = 0.0
            value = 0.0
            bust = True
        if record:
            equity[bar] = value
            held[bar] = units
        change = value / previous - 1.0 if previous > 0.0 else 0.0
        statistics[0] += change
        statistics[1] += change * change
        if change < 0.0:
            statistics[2] += change * change
        if value > peak:
            peak = value
        elif peak > 0.0 and 1.0 - value / peak > statistics[3]:
            statistics[3] = 1.0 - value / peak
        if units != 0.0:
            statistics[4] += 1.0
        previous = value
        # 4. this bar's signal becomes the next bar's order
        if signal[bar] != 0:
            pending = signal[bar]
    # the end: close what is still open at the last close
    if units != 0.0 and bars > 0 and not close_at_end:  # the open trade, marked at the last close
        _close_trade(trades, count, record, units, close[bars - 1], bars - 1, entry_bar, entry_price, entry_cost,
                     entry_fee, 0.0, EXIT_OPEN)
        count += 1
    elif units != 0.0 and bars > 0:
        direction = 1 if units > 0.0 else -1
        last = close[bars - 1]
        fill = last * (1.0 - slippage) if direction > 0 else last * (1.0 + slippage)
        paid = abs(units) * fill * fee
        cash += units * fill - paid
        _close_trade(trades, count, record, units, fill, bars - 1, entry_bar, entry_price, entry_cost, entry_fee,
                     paid, EXIT_END)
        count += 1
        value = max(cash, 0.0)
        if record:
            equity[bars - 1] = value
            held[bars - 1] = 0.0
    return equity, trades[:count], held, count, value, statistics


def simulate(open_: Floats, high: Floats, low: Floats, close: Floats, signal: Signals, config: SimulationConfig,
             atr: Floats | None = None) -> Simulation:
    """Run the model over one instrument's bars (ticks: the prices as all four) with its signals.

    ``signal`` is +1 (BUY), −1 (SELL) or 0 per bar; ``atr`` is needed when a level is in ATR multiples
    (the level uses the ATR of the signal bar, known when the order is placed).
    """
    if config.uses_atr and atr is None:
        raise ValueError("an ATR-based stop needs the ATR series")
    bars = len(close)
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (open_, high, low, close)]
    atr_array = np.full(bars, np.nan) if atr is None else np.ascontiguousarray(atr, dtype=np.float64)
    equity, trades, held, _, _, _ = run(*arrays, np.ascontiguousarray(signal, dtype=np.int8), atr_array,
                                     *config.arguments(), True)
    columns: dict[str, npt.NDArray[np.float64] | Ints] = {}
    for index, name in enumerate(TRADE_FIELDS):
        column = trades[:, index]
        integer = name in ("direction", "entry_bar", "exit_bar", "exit_reason")
        columns[name] = column.astype(np.int64) if integer else column
    return Simulation(equity=equity, trades=columns, position=held)


def summary(open_: Floats, close: Floats, signal: Signals, config: SimulationConfig) -> tuple[int, float, Floats]:
    """(trade count, final equity, statistics of :func:`run`) without stops — the sweep's inner call."""
    if config.stop_loss.value or config.take_profit.value or config.trailing_stop.value:
        raise ValueError("summary runs without stops; use simulate")
    nothing = np.full(len(close), np.nan)
    _, _, _, count, value, statistics = run(open_, close, close, close, signal, nothing, *config.arguments(), False)
    return int(count), float(value), statistics
