"""Helpers for the node tests: OHLCV bar series (hypothesis) and running one indicator through the engine."""

from __future__ import annotations

import math
import random

import numpy as np
from hypothesis import strategies as st

from processors.core.strategies import ir
from processors.core.strategies.engine import ClosedCandle, CompiledStrategies

LEVELS = {"btc": (64_000.0, 0.01), "stock": (150.0, 0.01), "subcent": (0.000_5, 1e-8)}
MINUTE_US = 60_000_000
START_US = 1_710_000_000_000_000 - 1_710_000_000_000_000 % MINUTE_US


class Bars:
    """Equal-length OHLCV columns (floats) and the level they were drawn at."""

    def __init__(self, level: str, opens: list[float], highs: list[float], lows: list[float], closes: list[float],
                 volumes: list[float]) -> None:
        self.level = level
        self.open, self.high, self.low, self.close, self.volume = opens, highs, lows, closes, volumes

    def __len__(self) -> int:
        return len(self.close)

    def arrays(self, scale: float = 1.0) -> tuple[np.ndarray, ...]:
        return tuple(np.array(column) * scale for column in (self.open, self.high, self.low, self.close)) + (
            np.array(self.volume),)


@st.composite
def bar_series(draw: st.DrawFn, *, ticks: bool | None = None) -> Bars:
    """Walks, flat starts and stretches, one-bar spikes, jumps and grid noise, as OHLCV bars on a price grid.

    ``ticks=True`` gives tick-like bars (open = high = low = close), as the tick timeframe sees them.
    """
    level_name = draw(st.sampled_from(sorted(LEVELS)))
    level, grid = LEVELS[level_name]
    tick_like = draw(st.booleans()) if ticks is None else ticks
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # noqa: S311 - test data
    price = max(grid, round(level * draw(st.floats(0.5, 2.0)) / grid) * grid)
    closes = [price] * draw(st.integers(0, 40))
    segments = draw(st.lists(st.tuples(st.sampled_from(["walk", "walk", "flat", "spike", "jump", "noise"]),
                                       st.integers(1, 50)), min_size=1, max_size=8))
    for kind, length in segments:
        for _ in range(length if kind != "spike" else 1):
            if kind == "walk":
                price *= math.exp(rng.gauss(0.0, 0.003))
            elif kind == "jump":
                price *= rng.choice((0.7, 1.4))
            elif kind == "noise":
                price += rng.choice((-grid, grid))
            if kind == "spike":
                closes.append(max(grid, round(price * rng.choice((0.01, 100.0)) / grid) * grid))
            else:
                price = max(grid, round(price / grid) * grid)
                closes.append(price)
    opens, highs, lows = [], [], []
    flat_start = len(closes) and closes.count(closes[0])
    for i, close in enumerate(closes):
        if tick_like or (i < flat_start and all(c == closes[0] for c in closes[: i + 1])):
            opens.append(close)
            highs.append(close)
            lows.append(close)
            continue
        before = closes[i - 1] if i else close
        spread = abs(close) * rng.choice((0.0, 0.0005, 0.002, 0.01))
        high = max(close, before) + round(rng.random() * spread / grid) * grid
        low = max(grid, min(close, before) - round(rng.random() * spread / grid) * grid)
        opens.append(before)
        highs.append(high)
        lows.append(low)
    volumes = [0.0 if rng.random() < 0.2 else round(rng.lognormvariate(0, 1), 6) for _ in closes]
    return Bars(level_name, opens, highs, lows, closes, volumes)


def run_indicators(indicators: list[ir.Indicator], bars: Bars, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Each indicator's values (NaN = undefined) over the bars fed as closed 1m candles, one per minute."""
    named = [(f"out{i}", indicator) for i, indicator in enumerate(indicators)]
    compiled = CompiledStrategies((), candle_timeframes=("1m",), outputs={"1m": named})
    state = compiled.new_state("TEST")
    rows: dict[str, list[float]] = {name: [] for name, _ in named}
    for i in range(len(bars)):
        start = START_US + i * MINUTE_US
        compiled.on_candle(state, ClosedCandle("1m", start, start + MINUTE_US, bars.open[i] * scale,
                                               bars.high[i] * scale, bars.low[i] * scale, bars.close[i] * scale,
                                               bars.volume[i]))
        values = compiled.values(state, "1m")
        for name, _ in named:
            value = values[name]
            rows[name].append(math.nan if value is None else value)
    return {name: np.array(rows[f"out{i}"]) for i, (name, _) in enumerate(
        (ir.series_text(indicator, "1m"), indicator) for indicator in indicators)}


def indicator(name: str, *params: int | float, member: str | None = None,
              source: ir.PriceField | ir.Indicator | None = None) -> ir.Indicator:
    return ir.Indicator(name, tuple(params), member, "1m", source)
