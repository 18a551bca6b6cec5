"""The moving-average cache of the sweep kernel never serves a line computed for other bars."""

import numpy as np

from processors.core.vector import indicators
from spark_jobs.sweep.kernel import Bars, MovingAverageCross, cross_signals


def _fresh(bars: Bars, fast: int, slow: int) -> np.ndarray:
    return cross_signals(indicators.sma(bars.close, fast), indicators.sma(bars.close, slow))


def test_a_view_made_after_an_older_one_is_freed_gets_its_own_lines():
    # walk_forward slices the bars once per fold and drops the slice: CPython reuses the freed view's
    # address, so a cache keyed by id() alone handed fold 2 the (shorter) lines of fold 1.
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 4_000)))
    bars = Bars(np.arange(4_000, dtype=np.int64) * 60_000_000, close.copy(), close)
    strategy = MovingAverageCross("sma")
    for stop in range(1_000, 4_000, 37):
        head = bars.slice(0, stop)
        signals = strategy.signals({"fast": 5, "slow": 20}, head)
        assert len(signals) == stop
        assert np.array_equal(signals, _fresh(head, 5, 20))
        del head, signals


def test_the_same_bars_hit_the_cache():
    close = np.linspace(1.0, 2.0, 500)
    bars = Bars(np.arange(500, dtype=np.int64), close, close)
    strategy = MovingAverageCross("ema")
    assert strategy.line(9, bars) is strategy.line(9, bars)
