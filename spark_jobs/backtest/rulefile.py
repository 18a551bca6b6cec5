"""Strategy files in the rule language (``[strategies.NAME]`` tables) as signals for backtests and sweeps.

Called by :mod:`spark_jobs.backtest.portfolio` (``stockstream backtest --strategy FILE``) and by the
sweep (``stockstream sweep --strategy FILE --grid 'trend.fast=5..20, …'``, inside Spark tasks, once
per combination). The same file a processor deploys is what is backtested and swept: parameters are
the ``params`` of its strategies, a sweep re-resolves the file with other values (no text is edited).

Signals come from :class:`~processors.core.vector.strategies.VectorStrategies`, held equal to the
streaming engine (tests/unit/core/test_core_vector_strategies.py), over one instrument's history:

- the traded timeframe's bars (ticks, or epoch-aligned candles built from the ticks), and the
  candles of every other timeframe a rule reads with ``@tf``, built from the same ticks;
- a tick strategy reading ``@tf`` sees the candles closed at or before the tick (the live
  pipeline closes a window before it evaluates the tick that closed it);
- per bar: +1 when a chosen strategy's BUY fires, −1 for SELL, 0 when none or both (they cancel).

Only strategies on the traded timeframe that apply to the instrument's symbol are traded.
Errors (unreadable file, invalid rules, unknown parameters, nothing to trade) are
:class:`RuleFileError` with a message that says what to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from processors.core.config_file import ConfigFileError, parse_mapping, read_text, syntax_of
from processors.core.strategies import ir
from processors.core.strategies.file import (
    StrategyFileError,
    candle_timeframes_named,
    strategies_from_mapping,
)
from processors.core.vector.nodes import Series
from processors.core.vector.strategies import VectorStrategies
from schemas.timeframes import TICK, timeframe_ms

Signals = npt.NDArray[np.int8]


class RuleFileError(ValueError):
    """A rule-language strategy file that cannot be backtested or swept as asked; the message says why."""


@dataclass(frozen=True)
class Candles:
    """One instrument's bars of a timeframe: ticks (open = high = low = close = price) or candles."""

    timeframe: str
    ts_open: npt.NDArray[np.int64]
    ts_close: npt.NDArray[np.int64]  # a tick's time, or the candle's end (exclusive)
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]

    def series(self) -> Series:
        if self.timeframe == TICK:
            return Series.ticks(self.ts_close, self.close, self.volume)
        return Series.candles(self.ts_open, self.ts_close, self.open, self.high, self.low, self.close, self.volume)


def bars_from_ticks(times: npt.NDArray[np.int64], price: npt.NDArray[np.float64], volume: npt.NDArray[np.float64],
                    timeframe: str) -> Candles:
    """Ticks in time order as they are (``tick``), or their epoch-aligned candles (empty windows: no candle)."""
    times = np.ascontiguousarray(times, dtype=np.int64)
    price = np.ascontiguousarray(price, dtype=np.float64)
    volume = np.ascontiguousarray(volume, dtype=np.float64)
    if timeframe == TICK:
        return Candles(TICK, times, times, price, price, price, price, volume)
    length = timeframe_ms(timeframe) * 1000
    window = times - times % length
    starts = np.flatnonzero(np.concatenate([[True], window[1:] != window[:-1]])) if len(times) else np.zeros(0, int)
    ends = np.concatenate([starts[1:], [len(times)]]) - 1 if len(times) else np.zeros(0, int)
    opened = window[starts]
    return Candles(timeframe, opened, opened + length, price[starts], np.maximum.reduceat(price, starts),
                   np.minimum.reduceat(price, starts), price[ends], np.add.reduceat(volume, starts))


@dataclass(frozen=True)
class RuleFile:
    """A strategy file's text, parsed on demand with parameter overrides (picklable: sent to Spark tasks)."""

    text: str
    syntax: str
    source: str
    candle_timeframes: tuple[str, ...]

    @classmethod
    def read(cls, path: Path) -> RuleFile | None:
        """The file as a rule-language file, or None when it is the older indicator/rule-settings format."""
        try:
            syntax = syntax_of(path, "strategy file", StrategyFileError)
            text = read_text(path, "strategy file", StrategyFileError)
            raw = parse_mapping(text, syntax, str(path), "strategy file", StrategyFileError)
        except ConfigFileError as error:
            raise RuleFileError(str(error)) from None
        if "strategies" not in raw:
            return None
        tables = raw["strategies"] if isinstance(raw["strategies"], Mapping) else {}
        rule_file = cls(text, syntax, str(path), candle_timeframes_named(tables))
        rule_file.definitions()  # every problem now, before any work
        return rule_file

    def definitions(self, overrides: Mapping[str, int | float] | None = None) -> tuple[ir.StrategyDefinition, ...]:
        """The strategies with ``overrides`` applied (``name.param`` for one strategy, ``param`` for each declaring it)."""
        try:
            raw = parse_mapping(self.text, self.syntax, self.source, "strategy file", StrategyFileError)
            plain = strategies_from_mapping(raw, source=self.source, candle_timeframes=self.candle_timeframes)
            per_strategy = self._overrides(plain, overrides or {})
            if not per_strategy:
                return plain
            return strategies_from_mapping(raw, source=self.source, candle_timeframes=self.candle_timeframes,
                                           overrides=per_strategy)
        except StrategyFileError as error:
            raise RuleFileError(str(error)) from None

    def parameters(self) -> dict[str, int | float]:
        """Every declared parameter as ``strategy.param`` → its value in the file."""
        return {f"{d.name}.{name}": value for d in self.definitions() for name, value in d.params}

    def _overrides(self, plain: Sequence[ir.StrategyDefinition],
                   overrides: Mapping[str, int | float]) -> dict[str, dict[str, int | float]]:
        declared = {d.name: dict(d.params) for d in plain}
        chosen: dict[str, dict[str, int | float]] = {}
        for key, value in overrides.items():
            strategy, dot, name = key.rpartition(".")
            targets = [strategy] if dot else [s for s, params in declared.items() if name in params]
            if (dot and name not in declared.get(strategy, {})) or not targets:
                known = ", ".join(f"{s}.{p}" for s, params in declared.items() for p in params) or "none"
                raise RuleFileError(f"{self.source}: no parameter {key!r} (declared: {known})")
            for target in targets:
                chosen.setdefault(target, {})[name] = value
        return chosen


def traded(definitions: Sequence[ir.StrategyDefinition], timeframe: str,
           names: Sequence[str] | None = None) -> list[ir.StrategyDefinition]:
    """The strategies traded on ``timeframe`` (of ``names`` when given); a clear error when none."""
    if names:
        unknown = sorted(set(names) - {d.name for d in definitions})
        if unknown:
            raise RuleFileError(f"no strategy {unknown} in the file (it has {sorted({d.name for d in definitions})})")
    chosen = [d for d in definitions if d.timeframe == timeframe and (not names or d.name in names)]
    if not chosen:
        on = sorted({f"{d.name} on {d.timeframe}" for d in definitions if not names or d.name in names})
        raise RuleFileError(f"no strategy runs on {timeframe} ({'; '.join(on)}): pass --timeframe")
    return chosen


def rule_signals(definitions: Sequence[ir.StrategyDefinition], symbol: str, times: npt.NDArray[np.int64],
                 price: npt.NDArray[np.float64], volume: npt.NDArray[np.float64], timeframe: str,
                 names: Sequence[str] | None = None) -> tuple[Candles, Signals]:
    """The traded bars of one instrument's ticks (time order) and +1/−1/0 per bar (see the module docstring)."""
    chosen = traded(definitions, timeframe, names)
    candle_timeframes = sorted({leaf.timeframe for d in chosen for condition in (d.buy, d.sell)
                                if condition is not None for leaf in ir.leaves(condition)} - {TICK}
                               | ({timeframe} - {TICK}))
    vector = VectorStrategies(chosen, candle_timeframes=candle_timeframes)
    bars = {tf: bars_from_ticks(times, price, volume, tf) for tf in {timeframe, *candle_timeframes}}
    handed = {}
    if timeframe == TICK:
        handed = {tf: np.searchsorted(bars[tf].ts_close, bars[TICK].ts_close, side="right").astype(np.int64)
                  for tf in candle_timeframes}
    result = vector.evaluate(symbol.partition("@")[0], {tf: candles.series() for tf, candles in bars.items()}, handed)
    total = np.zeros(len(bars[timeframe].close), dtype=np.int64)
    for mask in result.sides.get(timeframe, []):
        total[mask.fired] += 1 if mask.side == "BUY" else -1
    return bars[timeframe], np.sign(total).astype(np.int8)
