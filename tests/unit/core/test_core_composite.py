"""The composite index (processors/core/composite.py) equals a pandas computation of its definition.

The reference is written the way an analyst would state the definition over a table of the
inputs (one row per tick read, in order): the clock is the running maximum of event time, each
venue's latest price and time are forward-filled, a venue counts while ``clock − t < stale``,
the value is the row median over counted venues, and an emission is a value different from the
previous value (rows without a value emit nothing and leave the previous one).
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.core.composite import composite_step

STALE_US = 10_000_000


def run_core(rows: list[tuple[str, float, int]], stale_us: int = STALE_US) -> list[tuple[int, float, int]]:
    """(input index, price, ts_us) of every emission."""
    state, out = None, []
    for index, (venue, price, ts_us) in enumerate(rows):
        state, emitted = composite_step(state, venue, price, ts_us, stale_us)
        if emitted is not None:
            out.append((index, emitted.price, emitted.ts_us))
    return out


def run_pandas(rows: list[tuple[str, float, int]], stale_us: int = STALE_US) -> list[tuple[int, float, int]]:
    frame = pd.DataFrame(rows, columns=["venue", "price", "ts"])
    clock = frame["ts"].cummax()
    prices = frame.pivot(columns="venue", values="price").ffill()
    seen = frame.pivot(columns="venue", values="ts").ffill()
    fresh = seen.rsub(clock, axis=0).lt(stale_us)
    value = prices.where(fresh).median(axis=1)  # NaN where no venue is fresh
    defined = value.dropna()
    changed = defined[defined.ne(defined.shift())]
    return [(int(index), float(price), int(clock[index])) for index, price in changed.items()]


def test_a_venue_going_stale_drops_out_and_counts_again_when_it_comes_back():
    s = 1_000_000
    rows = [("coinbase", 100.0, 0), ("kraken", 102.0, 1 * s), ("binance", 110.0, 2 * s),  # median 102
            ("coinbase", 100.0, 5 * s),  # unchanged: nothing emitted
            ("kraken", 102.0, 13 * s),  # clock 13 s: binance (2 s) is 11 s old → stale; median of 100, 102
            ("coinbase", 101.0, 14 * s),  # 101.5
            ("binance", 90.0, 15 * s),  # binance back: median of 101, 102, 90 → 101
            ("kraken", 103.0, 40 * s)]  # everyone else stale: kraken alone → 103
    assert run_core(rows) == [(0, 100.0, 0), (1, 101.0, s), (2, 102.0, 2 * s), (4, 101.0, 13 * s),
                              (5, 101.5, 14 * s), (6, 101.0, 15 * s), (7, 103.0, 40 * s)]
    assert run_core(rows) == run_pandas(rows)


def test_the_composite_never_reads_its_own_ticks():
    with pytest.raises(ValueError, match="own ticks"):
        composite_step(None, "index", 1.0, 0, STALE_US)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10**6), venues=st.integers(1, 5), count=st.integers(1, 300))
def test_the_core_equals_pandas_for_any_interleaving_with_gaps(seed, venues, count):
    rng = random.Random(seed)
    names = [f"v{index}" for index in range(venues)]
    clocks = dict.fromkeys(names, 0)
    rows = []
    for _ in range(count):
        venue = rng.choice(names)
        # mostly small steps, sometimes a long silence (stale), sometimes a step back in time
        clocks[venue] += rng.choice([250_000, 1_000_000, 3_000_000, 25_000_000, -2_000_000])
        rows.append((venue, round(rng.uniform(95, 105), rng.choice([0, 1, 2])), clocks[venue]))
    assert run_core(rows) == run_pandas(rows)


def test_even_counts_take_the_mean_of_the_two_middle_prices_like_pandas():
    rows = [("a", 1.1, 0), ("b", 2.2, 1), ("c", 3.3, 2), ("d", 4.4, 3)]
    assert run_core(rows)[-1][1] == float(np.median([1.1, 2.2, 3.3, 4.4])) == run_pandas(rows)[-1][1]
