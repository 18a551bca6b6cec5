"""Property tests: the new indicators (ATR, STOCH, ADX/±DI, OBV, CCI, WILLR, ROC, WMA, highest/lowest,
Donchian) against TA-Lib (the reference) and, where sums can cancel, exact rational arithmetic.

Tolerances (also in docs/core.md, "Comparison with TA-Lib"):
- oscillators on a fixed scale — STOCH %K/%D, ±DI, ADX (0–100), WILLR (−100–0): absolute 1e-9;
- ATR, OBV, ROC: TA-Lib's operation order, so 1e-9 relative (absolute floors: 1e-12 of the price
  level for ATR, 1e-9 of the summed volume for OBV, 1e-9 for ROC in percent);
- highest/lowest/Donchian: equal (they are values of the series);
- WMA and CCI: ours within 1e-10 (WMA: relative; CCI: of |CCI| + 1) of the exact value computed
  with fractions; within 1e-9 of TA-Lib unless TA-Lib is the one farther from the exact value
  (its running sums keep residues after spikes; its CCI mean is a plain sum that cancels).
- ±DI/ADX: TA-Lib treats a smoothed true range below 1e-8 as zero, an absolute bound on a price
  quantity that misfires on sub-cent instruments. These indicators are ratios, and multiplying
  prices by a power of two changes no rounding, so TA-Lib runs on the series scaled by 2^k
  (level ≥ 1) and ours must give the same values on the scaled and the unscaled series.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nodes_support import Bars, bar_series, indicator, run_indicators

from processors.core.strategies import ir

EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same_definedness(name: str, ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    assert np.array_equal(np.isnan(ours), np.isnan(reference)), (name, np.isnan(ours), np.isnan(reference))
    return ~np.isnan(reference)


def check_absolute(name: str, ours: np.ndarray, reference: np.ndarray, tolerance: float = 1e-9) -> None:
    defined = same_definedness(name, ours, reference)
    error = np.abs(ours[defined] - reference[defined])
    assert np.all(error <= tolerance), (name, float(np.max(error, initial=0.0)))


def check_relative(name: str, ours: np.ndarray, reference: np.ndarray, floor: float) -> None:
    defined = same_definedness(name, ours, reference)
    error = np.abs(ours[defined] - reference[defined])
    assert np.all(error <= 1e-9 * np.abs(reference[defined]) + floor), (name, float(np.max(error, initial=0.0)))


def check_exact(name: str, ours: np.ndarray, reference: np.ndarray, exact: np.ndarray, scale: np.ndarray) -> None:
    """Ours within 1e-10·scale of exact; within 1e-9·scale of TA-Lib unless TA-Lib is farther from exact."""
    for i in np.flatnonzero(same_definedness(name, ours, reference)):
        ours_error = abs(ours[i] - exact[i])
        assert ours_error <= 1e-10 * scale[i], (name, i, ours[i], exact[i])
        if abs(ours[i] - reference[i]) > 1e-9 * scale[i]:
            assert abs(reference[i] - exact[i]) > ours_error, (name, i, ours[i], reference[i], exact[i])


def power_of_two_scale(bars: Bars) -> float:
    """2^k with the smallest price ≥ 1 after scaling (exact: no rounding changes)."""
    smallest = min(bars.low)
    return 2.0 ** max(0, math.ceil(-math.log2(smallest)))


@EXAMPLES
@given(bars=bar_series(), n=st.integers(1, 30))
def test_atr_equals_talib(bars: Bars, n: int) -> None:
    _, high, low, close, _ = bars.arrays()
    ours = run_indicators([indicator("atr", n)], bars)["atr(" + str(n) + ")"]
    check_relative("atr", ours, talib.ATR(high, low, close, n), floor=1e-12 * float(np.max(close)))


@EXAMPLES
@given(bars=bar_series(), n=st.integers(2, 30))
def test_directional_movement_equals_talib(bars: Bars, n: int) -> None:
    scale = power_of_two_scale(bars)
    _, high, low, close, _ = bars.arrays(scale)
    names = ("plus_di", "minus_di", "adx")
    wanted = [indicator(name, n) for name in names]
    ours = run_indicators(wanted, bars)
    scaled = run_indicators(wanted, bars, scale)
    references = {"plus_di": talib.PLUS_DI(high, low, close, n), "minus_di": talib.MINUS_DI(high, low, close, n),
                  "adx": talib.ADX(high, low, close, n)}
    for name in names:
        key = f"{name}({n})"
        assert np.array_equal(ours[key], scaled[key], equal_nan=True), name  # a ratio: scale-free, bit for bit
        check_absolute(name, ours[key], references[name])


@EXAMPLES
@given(bars=bar_series(), k=st.integers(1, 20), d=st.integers(1, 6), smooth=st.integers(1, 6))
def test_stochastic_equals_talib(bars: Bars, k: int, d: int, smooth: int) -> None:
    _, high, low, close, _ = bars.arrays()
    ours = run_indicators([indicator("stoch", k, d, smooth, member="k"), indicator("stoch", k, d, smooth, member="d")],
                          bars)
    slow_k, slow_d = talib.STOCH(high, low, close, fastk_period=k, slowk_period=smooth, slowk_matype=0,
                                 slowd_period=d, slowd_matype=0)
    # TA-Lib starts %K where %D starts (it returns both from the same index); ours has %K from its own start.
    ours_k = ours[f"stoch({k}, {d}, {smooth}).k"]
    start = k - 1 + smooth - 1 + d - 1
    ours_k[: min(start, len(ours_k))] = np.nan
    check_absolute("stoch.k", ours_k, slow_k)
    check_absolute("stoch.d", ours[f"stoch({k}, {d}, {smooth}).d"], slow_d)


@EXAMPLES
@given(bars=bar_series(), n=st.integers(2, 30))
def test_williams_r_equals_talib(bars: Bars, n: int) -> None:
    _, high, low, close, _ = bars.arrays()
    ours = run_indicators([indicator("willr", n)], bars)[f"willr({n})"]
    check_absolute("willr", ours, talib.WILLR(high, low, close, n))


@EXAMPLES
@given(bars=bar_series(), n=st.integers(1, 30))
def test_rate_of_change_equals_talib(bars: Bars, n: int) -> None:
    close = bars.arrays()[3]
    ours = run_indicators([indicator("roc", n)], bars)[f"roc({n})"]
    check_relative("roc", ours, talib.ROC(close, n), floor=1e-9)


@EXAMPLES
@given(bars=bar_series())
def test_on_balance_volume_equals_talib(bars: Bars) -> None:
    close, volume = bars.arrays()[3], bars.arrays()[4]
    ours = run_indicators([indicator("obv")], bars)["obv()"]
    check_relative("obv", ours, talib.OBV(close, volume), floor=1e-9 * float(np.sum(volume)))


@EXAMPLES
@given(bars=bar_series(), n=st.integers(2, 40))
def test_highest_lowest_and_donchian_equal_talib(bars: Bars, n: int) -> None:
    _, high, low, close, _ = bars.arrays()
    wanted = [indicator("highest", n, source=ir.PriceField("close", "1m")),
              indicator("lowest", n, source=ir.PriceField("close", "1m")),
              indicator("donchian", n, member="upper"), indicator("donchian", n, member="lower")]
    ours = run_indicators(wanted, bars)
    for key, reference in ((f"highest(close, {n})", talib.MAX(close, n)), (f"lowest(close, {n})", talib.MIN(close, n)),
                           (f"donchian({n}).upper", talib.MAX(high, n)), (f"donchian({n}).lower", talib.MIN(low, n))):
        defined = same_definedness(key, ours[key], reference)
        assert np.array_equal(ours[key][defined], reference[defined]), key


@EXAMPLES
@given(bars=bar_series(), n=st.integers(2, 10), m=st.integers(2, 30))
def test_highest_of_an_indicator_is_over_its_defined_values(bars: Bars, n: int, m: int) -> None:
    close = bars.arrays()[3]
    rsi = indicator("rsi", n)
    ours = run_indicators([indicator("highest", m, source=rsi), rsi], bars)
    rsi_values = ours[f"rsi({n})"]
    expected = np.full(len(close), np.nan)
    defined = np.flatnonzero(~np.isnan(rsi_values))
    if len(defined) >= m:
        expected[defined[m - 1:]] = talib.MAX(rsi_values[defined], m)[m - 1:]
    got = ours[f"highest(rsi({n}), {m})"]
    assert np.array_equal(got, expected, equal_nan=True)


def exact_wma(prices: list[float], n: int) -> np.ndarray:
    exact = [Fraction(p) for p in prices]
    out = np.full(len(prices), np.nan)
    divider = n * (n + 1) // 2
    for i in range(n - 1, len(prices)):
        out[i] = float(sum((Fraction(w) * x for w, x in enumerate(exact[i - n + 1: i + 1], 1)), Fraction(0)) / divider)
    return out


@EXAMPLES
@given(bars=bar_series(), n=st.integers(2, 40))
def test_weighted_moving_average_equals_talib_and_exact(bars: Bars, n: int) -> None:
    close = bars.arrays()[3]
    ours = run_indicators([indicator("wma", n)], bars)[f"wma({n})"]
    exact = exact_wma(bars.close, n)
    check_exact("wma", ours, talib.WMA(close, n), exact, np.abs(exact))


def exact_cci(bars: Bars, n: int) -> np.ndarray:
    typical = [Fraction((h + lo + c) / 3) for h, lo, c in zip(bars.high, bars.low, bars.close, strict=True)]
    out = np.full(len(typical), np.nan)
    for i in range(n - 1, len(typical)):
        window = typical[i - n + 1: i + 1]
        mean = sum(window, Fraction(0)) / n
        spread = sum((abs(x - mean) for x in window), Fraction(0)) / n
        numerator = typical[i] - mean
        out[i] = 0.0 if numerator == 0 or spread == 0 else float(numerator / (Fraction(0.015) * spread))
    return out


@EXAMPLES
@given(bars=bar_series(), n=st.integers(2, 30))
def test_commodity_channel_index_equals_talib_and_exact(bars: Bars, n: int) -> None:
    _, high, low, close, _ = bars.arrays()
    ours = run_indicators([indicator("cci", n)], bars)[f"cci({n})"]
    exact = exact_cci(bars, n)
    check_exact("cci", ours, talib.CCI(high, low, close, n), exact, np.abs(exact) + 1.0)


def test_flat_series_values_follow_talib() -> None:
    """The flat cases are TA-Lib's: STOCH/WILLR/CCI/±DI 0, ATR 0, ROC 0 (documented in docs/core.md)."""
    bars = Bars("stock", [10.0] * 40, [10.0] * 40, [10.0] * 40, [10.0] * 40, [1.0] * 40)
    ours = run_indicators([indicator("stoch", 5, 3, 3, member="k"), indicator("willr", 5), indicator("cci", 5),
                           indicator("plus_di", 5), indicator("atr", 5), indicator("roc", 5), indicator("adx", 5)],
                          bars)
    for key in ("stoch(5, 3, 3).k", "willr(5)", "cci(5)", "plus_di(5)", "atr(5)", "roc(5)"):
        values = ours[key][~np.isnan(ours[key])]
        assert len(values) and np.all(values == 0.0), key
    # ADX: no DX can be computed while TR is 0, so the first ADX is the mean of none: 0.
    assert np.all(ours["adx(5)"][~np.isnan(ours["adx(5)"])] == 0.0)
