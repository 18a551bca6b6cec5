"""The signal rules of :mod:`processors.core.rules` over whole arrays.

Called by the Spark backfill, the backtests and the sweeps after :func:`processors.core.vector.indicators.compute`.
Each rule compares an evaluation with the previous one of the same series, exactly as
:meth:`processors.core.rules.RuleEngine.evaluate` does from a fresh rule state; undefined values
are NaN (the engine's ``None``; a NaN comparison is false, as a ``None`` check is). The inputs it
reads (RSI, EMA, MACD) are bit-identical to the engine's, so the signals are identical, ties
included (tests/unit/core/test_core_vector_kernel.py).

The result is a list of :class:`FiredArray` in the engine's append order within one evaluation
(rsi_reversal, ema_cross, macd_cross, seed_rsi_ema; BUY before SELL): filtering that list by the
masks at index i gives the engine's ``fired`` list for evaluation i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.core.rules import BUY, SELL, RuleConfigError, RuleSpec
from processors.core.vector.nodes import Floats

Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class FiredArray:
    """Where one rule fires one side: ``mask[i]`` is True when evaluation i fires it."""

    rule: str
    side: str
    mask: Mask


def _previous(values: Floats) -> Floats:
    """The previous evaluation's value at each index (NaN at the first)."""
    before = np.empty_like(values)
    before[:1] = np.nan
    before[1:] = values[:-1]
    return before


def cross(first: Floats, second: Floats) -> tuple[Mask, Mask]:
    """(BUY, SELL) of a sign change of ``first − second``: from ≤ 0 to > 0, from ≥ 0 to < 0."""
    difference = first - second
    before = _previous(difference)
    with np.errstate(invalid="ignore"):
        buy = (before <= 0.0) & (difference > 0.0)
        sell = ~buy & (before >= 0.0) & (difference < 0.0)
    return buy, sell


def reversal(values: Floats, oversold: float, overbought: float) -> tuple[Mask, Mask]:
    """(BUY, SELL) of a level reversal: from < oversold to ≥ oversold, from > overbought to ≤ overbought."""
    before = _previous(values)
    with np.errstate(invalid="ignore"):
        buy = (before < oversold) & (oversold <= values)
        sell = ~buy & (before > overbought) & (overbought >= values)
    return buy, sell


def becomes_true(condition: Mask, defined: Mask) -> Mask:
    """Where ``condition`` is true and was false at the previous defined evaluation.

    The engine keeps the last defined evaluation's flag; definedness only grows along one series
    (an indicator, once defined, stays defined), so that is the previous index whenever it is defined.
    """
    before_false = np.zeros_like(condition)
    before_false[1:] = defined[:-1] & ~condition[:-1]
    return condition & defined & before_false


def _column(values: dict[str, Floats], rule: str, name: str, hint: str) -> Floats:
    if name not in values:
        raise RuleConfigError(f"rule {rule} needs {name}, which is not computed: {hint}")
    return values[name]


def evaluate(spec: RuleSpec, values: dict[str, Floats], price: Floats) -> list[FiredArray]:
    """The rules of ``spec`` over indicator arrays (names as in the engine) and the evaluated prices."""
    fired: list[FiredArray] = []
    if spec.rsi_reversal is not None:
        r = spec.rsi_reversal
        series = _column(values, "rsi_reversal", f"rsi_{r.period}", f"add {r.period} to indicators.rsi")
        buy, sell = reversal(series, r.oversold, r.overbought)
        fired += [FiredArray("rsi_reversal", BUY, buy), FiredArray("rsi_reversal", SELL, sell)]
    if spec.ema_cross is not None:
        e = spec.ema_cross
        fast = _column(values, "ema_cross", f"ema_{e.fast}", f"add {e.fast} to indicators.ema")
        slow = _column(values, "ema_cross", f"ema_{e.slow}", f"add {e.slow} to indicators.ema")
        buy, sell = cross(fast, slow)
        fired += [FiredArray("ema_cross", BUY, buy), FiredArray("ema_cross", SELL, sell)]
    if spec.macd_cross is not None:
        hint = "enable indicators.macd"
        macd = _column(values, "macd_cross", "macd", hint)
        signal = _column(values, "macd_cross", "macd_signal", hint)
        buy, sell = cross(macd, signal)
        fired += [FiredArray("macd_cross", BUY, buy), FiredArray("macd_cross", SELL, sell)]
    if spec.seed_rsi_ema is not None:
        s = spec.seed_rsi_ema
        rsi = _column(values, "seed_rsi_ema", f"rsi_{s.rsi_period}", f"add {s.rsi_period} to indicators.rsi")
        ema = _column(values, "seed_rsi_ema", f"ema_{s.ema_period}", f"add {s.ema_period} to indicators.ema")
        defined = ~np.isnan(rsi) & ~np.isnan(ema)
        with np.errstate(invalid="ignore"):
            buy = (rsi < s.oversold) & (price < ema)
            sell = (rsi > s.overbought) & (price > ema)
        fired += [FiredArray("seed_rsi_ema", BUY, becomes_true(buy, defined)),
                  FiredArray("seed_rsi_ema", SELL, becomes_true(sell, defined))]
    return fired
