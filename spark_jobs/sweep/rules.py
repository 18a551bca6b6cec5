"""A rule-language strategy file as a sweep strategy: grid parameters are the file's ``params``.

Called by :mod:`spark_jobs.sweep.job` inside Spark tasks (``stockstream sweep --strategy FILE``), one
combination at a time: the file is re-resolved with the combination as overrides
(``trend.fast`` → parameter ``fast`` of strategy ``trend``; a bare name sets it in every strategy that
declares it) and its strategies on the traded timeframe give the signals
(:func:`spark_jobs.backtest.rulefile.rule_signals`, the vectorized twin of the streaming engine) — the
same signals ``stockstream backtest --strategy FILE --set …`` trades, so a sweep row equals that
single backtest. Signals only look back, so the signals of the first n bars are those of the whole
history cut at n (walk-forward windows slice them).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from spark_jobs.backtest.rulefile import Candles, RuleFile, rule_signals
from spark_jobs.backtest.simulate import Signals
from spark_jobs.sweep.kernel import Bars


class RuleFileStrategy:
    """One instrument's ticks and a strategy file (picklable: shipped to the tasks once)."""

    def __init__(self, rule_file: RuleFile, symbol: str, times: npt.NDArray[np.int64],
                 price: npt.NDArray[np.float64], volume: npt.NDArray[np.float64], timeframe: str,
                 names: tuple[str, ...] = ()) -> None:
        self.rule_file = rule_file
        self.symbol = symbol
        self.ticks = (np.ascontiguousarray(times, dtype=np.int64), np.ascontiguousarray(price, dtype=np.float64),
                      np.ascontiguousarray(volume, dtype=np.float64))
        self.timeframe = timeframe
        self.names = names

    def signals_and_bars(self, parameters: dict[str, int | float]) -> tuple[Candles, Signals]:
        """The traded bars and +1/−1/0 per bar for one combination."""
        definitions = self.rule_file.definitions(parameters)
        return rule_signals(definitions, self.symbol, *self.ticks, self.timeframe, self.names)

    def bars(self) -> Bars:
        """The traded bars (times = the bar's close), as the sweep simulates them."""
        candles, _ = self.signals_and_bars({})
        return Bars(candles.ts_close, candles.open, candles.close)

    def signals(self, parameters: dict[str, int | float], bars: Bars) -> Signals:
        _, signal = self.signals_and_bars(parameters)
        return signal[: len(bars)]
