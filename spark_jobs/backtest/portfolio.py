"""Backtests over a ticks file with the vectorized kernel: signals per instrument, a weighted portfolio.

Called by ``stockstream backtest --input ticks.csv|ticks.parquet`` (a user with history and no Kafka).
Per symbol: the ticks in time order (stable), or epoch-aligned candles of a timeframe (open = first,
close = last tick of the window, high/low, volume); the strategy's indicators and rules over them with
the kernel (:mod:`processors.core.vector`, equal to the engine); the chosen rules' signals (+1/−1;
BUY and SELL in one evaluation cancel); the simulation of :mod:`spark_jobs.backtest.simulate`
(next-bar open fills, costs, sizing, stops). ATR(14) (Wilder, on the bars) is computed when a stop
needs it.

Portfolio: the initial capital is split by ``weights`` (equal by default); each instrument trades its
share alone (one position per instrument); the portfolio's equity at a time is the sum of every
instrument's latest equity (an instrument not yet started counts its share in cash). Buy-and-hold is
the same split, each share bought at the first bar's open-after-signal convention (a BUY on the first
bar, filled at the second bar's open) and held to the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from processors.core.strategy import DEFAULT_STRATEGY, Strategy
from processors.core.timeutil import DAY_US
from processors.core.vector import indicators as kernel
from processors.core.vector import rules as vector_rules
from schemas.timeframes import TICK, timeframe_ms
from spark_jobs.backtest import metrics
from spark_jobs.backtest.data import BacktestInputError, select
from spark_jobs.backtest.rulefile import RuleFile, RuleFileError, rule_signals
from spark_jobs.backtest.simulate import Simulation, SimulationConfig, simulate

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class InstrumentBars:
    symbol: str
    times: npt.NDArray[np.int64]
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Floats


@dataclass
class InstrumentResult:
    symbol: str
    bars: InstrumentBars
    signal: npt.NDArray[np.int8]
    weight: float
    simulation: Simulation
    hold: Simulation
    metrics: dict[str, Any] = field(default_factory=dict)
    hold_metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class PortfolioResult:
    instruments: list[InstrumentResult]
    times: npt.NDArray[np.int64]
    equity: Floats
    hold_equity: Floats
    metrics: dict[str, Any]
    hold_metrics: dict[str, Any]


def read_ticks(path: Path) -> pd.DataFrame:
    """A ticks file (CSV or Parquet: ``timestamp, symbol, price[, volume, venue]``) with times as µs; clear errors.

    With a ``venue`` column each venue's symbol is its own instrument: the frame's ``symbol`` then
    holds ``SYMBOL@venue``, so two venues' prices are never one series.
    """
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise BacktestInputError(f"{path}: cannot read: {error}") from None
    missing = {"timestamp", "symbol", "price"} - set(frame.columns)
    if missing:
        raise BacktestInputError(f"{path}: missing columns {sorted(missing)} (timestamp, symbol, price[, volume])")
    stamps = frame["timestamp"]
    try:
        if pd.api.types.is_datetime64_any_dtype(stamps):  # a Parquet timestamp column (naive = UTC)
            times = pd.to_datetime(stamps, utc=True)
        elif pd.api.types.is_numeric_dtype(stamps):  # epoch milliseconds
            times = pd.to_datetime(stamps, unit="ms", utc=True)
        else:
            times = pd.to_datetime(stamps, utc=True, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise BacktestInputError(f"{path}: bad timestamp: {error}") from None
    prices = pd.to_numeric(frame["price"], errors="coerce")
    bad = ~(np.isfinite(prices) & (prices > 0))
    if bad.any():
        raise BacktestInputError(f"{path}: {int(bad.sum())} rows without a positive price (first: row {int(np.flatnonzero(bad)[0]) + 2})")
    volume = pd.to_numeric(frame["volume"], errors="coerce").fillna(0.0) if "volume" in frame else 0.0
    venues = frame["venue"].fillna("file") if "venue" in frame else None
    symbols = _instruments(frame["symbol"], venues)
    return pd.DataFrame({"ts_us": times.to_numpy(dtype="datetime64[us]").astype(np.int64),
                         "symbol": symbols, "price": prices.astype(float),
                         "volume": volume})


def _instruments(symbols: pd.Series, venues: pd.Series | None) -> pd.Series:
    """``SYMBOL`` (upper case), or ``SYMBOL@venue`` with a venue column, per row: each distinct
    (symbol, venue) pair is spelled once (a file has a handful; ``str.upper`` per row was most of the
    time of reading a 1M-row file)."""
    keys = symbols if venues is None else pd.MultiIndex.from_arrays([symbols, venues])
    codes, uniques = pd.factorize(keys, use_na_sentinel=False)
    if venues is None:
        names = [str(symbol).upper() for symbol in uniques]
    else:
        names = [f"{str(symbol).upper()}@{str(venue).lower()}" for symbol, venue in uniques]
    return pd.Series(np.asarray(names, dtype=object)[codes], index=symbols.index)


def bars_of(ticks: pd.DataFrame, symbol: str, timeframe: str) -> InstrumentBars:
    """One symbol's ticks (time order, stable) or its candles of ``timeframe``."""
    own = ticks[ticks["symbol"] == symbol].sort_values("ts_us", kind="stable")
    times = own["ts_us"].to_numpy()
    price = own["price"].to_numpy(dtype=np.float64)
    volume = own["volume"].to_numpy(dtype=np.float64)
    if timeframe == TICK:
        return InstrumentBars(symbol, times, price, price, price, price, volume)
    length = timeframe_ms(timeframe) * 1000
    window = times - times % length
    grouped = pd.DataFrame({"window": window, "price": price, "volume": volume}).groupby("window", sort=True)
    candles = grouped["price"].agg(["first", "max", "min", "last"])
    return InstrumentBars(symbol, candles.index.to_numpy(dtype=np.int64) + length,
                          candles["first"].to_numpy(), candles["max"].to_numpy(), candles["min"].to_numpy(),
                          candles["last"].to_numpy(), grouped["volume"].sum().to_numpy())


def wilder_atr(bars: InstrumentBars, period: int = 14) -> Floats:
    """ATR(period), Wilder: mean of the first ``period`` true ranges, then ``(atr·(n−1) + tr)/n``."""
    previous = np.concatenate([[np.nan], bars.close[:-1]])
    with np.errstate(invalid="ignore"):
        ranges = np.fmax(bars.high - bars.low, np.fmax(np.abs(bars.high - previous), np.abs(bars.low - previous)))
    out = np.full(len(ranges), np.nan)
    if len(ranges) > period:
        value = float(np.mean(ranges[1 : period + 1]))
        out[period] = value
        for index in range(period + 1, len(ranges)):
            value = (value * (period - 1) + ranges[index]) / period
            out[index] = value
    return out


def signals_of(bars: InstrumentBars, strategy: Strategy, rules: tuple[str, ...]) -> npt.NDArray[np.int8]:
    """+1/−1/0 per bar from the chosen rules of the symbol's strategy (BUY and SELL together cancel)."""
    chosen = strategy.for_symbol(bars.symbol.partition("@")[0])
    values = kernel.compute(chosen.indicators.spec(), bars.close, bars.volume, bars.times // DAY_US)
    signal = np.zeros(len(bars.close), dtype=np.int8)
    for fired in vector_rules.evaluate(chosen.rules.spec(), values, bars.close):
        if fired.rule in rules:
            signal[fired.mask] += 1 if fired.side == "BUY" else -1
    return np.sign(signal).astype(np.int8)


def _rule_file_bars(ticks: pd.DataFrame, symbol: str, timeframe: str, definitions: Any,
                    names: tuple[str, ...]) -> tuple[InstrumentBars, npt.NDArray[np.int8]]:
    """One instrument's bars and the signals of the rule file's strategies on ``timeframe``."""
    own = ticks[ticks["symbol"] == symbol].sort_values("ts_us", kind="stable")
    try:
        candles, signal = rule_signals(definitions, symbol, own["ts_us"].to_numpy(dtype=np.int64),
                                       own["price"].to_numpy(dtype=np.float64),
                                       own["volume"].to_numpy(dtype=np.float64), timeframe, names)
    except RuleFileError as error:
        raise BacktestInputError(str(error)) from None
    return InstrumentBars(symbol, candles.ts_close, candles.open, candles.high, candles.low, candles.close,
                          candles.volume), signal


def weights_of(symbols: list[str], weights: dict[str, float] | None) -> dict[str, float]:
    if not weights:
        return dict.fromkeys(symbols, 1.0 / len(symbols))
    unknown = set(weights) - set(symbols)
    if unknown:
        raise BacktestInputError(f"weights for symbols not in the input: {sorted(unknown)}")
    if any(weights.get(symbol, 0.0) < 0 for symbol in symbols) or sum(weights.values()) <= 0:
        raise BacktestInputError("weights must be non-negative with a positive sum")
    total = sum(weights.values())
    return {symbol: weights.get(symbol, 0.0) / total for symbol in symbols}


def run_portfolio(ticks: pd.DataFrame, symbols: list[str], timeframe: str, config: SimulationConfig,
                  strategy: Strategy = DEFAULT_STRATEGY, rules: tuple[str, ...] | None = None,
                  weights: dict[str, float] | None = None, rule_file: RuleFile | None = None,
                  overrides: dict[str, int | float] | None = None) -> PortfolioResult:
    """Every instrument on its share of the capital, then the portfolio (see the module docstring).

    With ``rule_file`` (a rule-language strategy file, parameters ``overrides``) its strategies on
    ``timeframe`` give the signals (``rules`` then names strategies); else ``strategy``'s rules do.
    """
    available = sorted(set(ticks["symbol"]))
    chosen, missing = select(available, symbols)
    if missing:
        raise BacktestInputError(f"no ticks for {missing} (the input has {available})")
    shares = weights_of(chosen, weights)
    definitions = None if rule_file is None else rule_file.definitions(overrides)
    rule_names = rules or (() if rule_file is not None else tuple(strategy.rules.spec().enabled()))
    signalled = []
    for symbol in chosen:
        if definitions is not None:
            bars, signal = _rule_file_bars(ticks, symbol, timeframe, definitions, rule_names)
        else:
            bars = bars_of(ticks, symbol, timeframe)
            signal = signals_of(bars, strategy, rule_names)
        signalled.append((bars, signal))
    return trade(signalled, timeframe, config, shares)


def trade(signalled: list[tuple[InstrumentBars, npt.NDArray[np.int8]]], timeframe: str, config: SimulationConfig,
          shares: dict[str, float]) -> PortfolioResult:
    """Simulate each instrument's signals on its share of the capital, then the portfolio (module docstring).

    Called by :func:`run_portfolio` (ticks files) and :mod:`spark_jobs.backtest.backfilled` (backfill output).
    """
    results = []
    for bars, signal in signalled:
        symbol = bars.symbol
        if len(bars.close) < 2:
            raise BacktestInputError(f"{symbol}: fewer than two {timeframe} bars")
        capital = config.initial_capital * shares[symbol]
        own = SimulationConfig(**{**config.__dict__, "initial_capital": max(capital, 1e-300)})
        atr = wilder_atr(bars) if config.uses_atr else None
        simulation = simulate(bars.open, bars.high, bars.low, bars.close, signal, own, atr)
        hold_signal = np.zeros(len(bars.close), dtype=np.int8)
        hold_signal[0] = 1
        hold_config = SimulationConfig(fee=config.fee, slippage=config.slippage, initial_capital=own.initial_capital)
        hold = simulate(bars.open, bars.high, bars.low, bars.close, hold_signal, hold_config)
        result = InstrumentResult(symbol, bars, signal, shares[symbol], simulation, hold)
        result.metrics = metrics.compute(simulation.equity, bars.times, own.initial_capital,
                                         simulation.trades["pnl"], simulation.trades["net_return"], simulation.position)
        result.hold_metrics = metrics.compute(hold.equity, bars.times, own.initial_capital, hold.trades["pnl"],
                                              hold.trades["net_return"], hold.position)
        results.append(result)
    times = np.unique(np.concatenate([r.bars.times for r in results]))
    equity = np.zeros(len(times))
    hold_equity = np.zeros(len(times))
    for result in results:
        capital = config.initial_capital * result.weight
        where = np.searchsorted(result.bars.times, times, side="right") - 1
        started = where >= 0
        equity += np.where(started, result.simulation.equity[np.maximum(where, 0)], capital)
        hold_equity += np.where(started, result.hold.equity[np.maximum(where, 0)], capital)
    pnl = np.concatenate([r.simulation.trades["pnl"] for r in results])
    net = np.concatenate([r.simulation.trades["net_return"] for r in results])
    exposure = np.zeros(len(times))
    for result in results:
        where = np.searchsorted(result.bars.times, times, side="right") - 1
        exposure += np.where(where >= 0, np.abs(result.simulation.position[np.maximum(where, 0)]), 0.0)
    portfolio = metrics.compute(equity, times, config.initial_capital, pnl, net, exposure)
    hold_pnl = np.concatenate([r.hold.trades["pnl"] for r in results])
    hold_net = np.concatenate([r.hold.trades["net_return"] for r in results])
    hold = metrics.compute(hold_equity, times, config.initial_capital, hold_pnl, hold_net, np.ones(len(times)))
    return PortfolioResult(results, times, equity, hold_equity, portfolio, hold)
