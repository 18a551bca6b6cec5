"""The four rules of MISSION.md as built-in strategies written in the rule language.

They reproduce :class:`processors.core.rules.RuleEngine` signal for signal (held to it on a
100 000-tick series and on hypothesis series with random periods and thresholds:
tests/unit/core/strategies/test_strategies_builtin.py). The rule engine compares each value
with the previous one; here the conditions are plain states and the language's firing rule
(true now, false at the previous evaluation) supplies the transition:

- ``rsi_reversal``: BUY when ``rsi >= oversold`` becomes true (RSI went from < oversold to ≥),
  SELL when ``rsi <= overbought`` becomes true (from > overbought to ≤);
- ``ema_cross``: ``ema(fast) > ema(slow)`` / ``<`` becoming true is the sign change of
  EMA(fast) − EMA(slow) from ≤ 0 to > 0 / from ≥ 0 to < 0 (for floats, a − b > 0 ⟺ a > b);
- ``macd_cross``: the same with the MACD line and its signal;
- ``seed_rsi_ema``: the original brief's rule, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from processors.core.config_errors import Problem
from processors.core.indicators import IndicatorSpec, MacdSpec
from processors.core.rules import RULE_NAMES, RuleSpec
from processors.core.strategies import ir
from processors.core.strategies.file import define_strategy

BUILTIN: dict[str, dict[str, object]] = {
    "rsi_reversal": {
        "description": "RSI leaves the oversold zone (BUY) or the overbought zone (SELL)",
        "params": {"period": 14, "oversold": 30, "overbought": 70},
        "buy": "rsi(period) >= oversold",
        "sell": "rsi(period) <= overbought",
    },
    "ema_cross": {
        "description": "the fast EMA crosses above (BUY) or below (SELL) the slow one",
        "params": {"fast": 12, "slow": 26},
        "buy": "ema(fast) > ema(slow)",
        "sell": "ema(fast) < ema(slow)",
    },
    "macd_cross": {
        "description": "the MACD line crosses above (BUY) or below (SELL) its signal line",
        "params": {"fast": 12, "slow": 26, "signal": 9},
        "buy": "macd(fast, slow, signal).line > macd(fast, slow, signal).signal",
        "sell": "macd(fast, slow, signal).line < macd(fast, slow, signal).signal",
    },
    "seed_rsi_ema": {
        "description": "the original brief's rule: oversold below the EMA (BUY), overbought above it (SELL)",
        "params": {"rsi_period": 14, "ema_period": 12, "oversold": 30, "overbought": 70},
        "buy": "rsi(rsi_period) < oversold and price < ema(ema_period)",
        "sell": "rsi(rsi_period) > overbought and price > ema(ema_period)",
    },
}
"""The built-in strategies' tables, as a ``[strategies.NAME]`` table of a strategy file would hold them."""


def _parameters(rules: RuleSpec, macd: MacdSpec | None) -> dict[str, dict[str, int | float]]:
    found: dict[str, dict[str, int | float]] = {}
    if rules.rsi_reversal is not None:
        r = rules.rsi_reversal
        found["rsi_reversal"] = {"period": r.period, "oversold": r.oversold, "overbought": r.overbought}
    if rules.ema_cross is not None:
        found["ema_cross"] = {"fast": rules.ema_cross.fast, "slow": rules.ema_cross.slow}
    if rules.macd_cross is not None:
        if macd is None:
            raise ValueError("rule macd_cross needs MACD periods (indicators.macd is disabled)")
        found["macd_cross"] = {"fast": macd.fast, "slow": macd.slow, "signal": macd.signal}
    if rules.seed_rsi_ema is not None:
        s = rules.seed_rsi_ema
        found["seed_rsi_ema"] = {"rsi_period": s.rsi_period, "ema_period": s.ema_period,
                                 "oversold": s.oversold, "overbought": s.overbought}
    return found


def builtin_strategies(rules: RuleSpec | None = None, macd: MacdSpec | None = None,
                       timeframes: Sequence[str] = (ir.TICK,)) -> tuple[ir.StrategyDefinition, ...]:
    """The enabled rules of ``rules`` (default: all four, MISSION.md's thresholds) as strategies.

    ``macd`` gives macd_cross its periods (the indicator set's MACD; default 12/26/9). One
    strategy per rule and timeframe in ``timeframes`` (the rule engine runs on ``tick`` and on
    every candle timeframe), in the rule engine's order: rule by rule, each on every timeframe.
    Raises ``ValueError`` for parameters the language refuses.
    """
    rules = RuleSpec() if rules is None else rules
    chosen = _parameters(rules, MacdSpec() if macd is None else macd)
    candle_timeframes = [timeframe for timeframe in timeframes if timeframe != ir.TICK]
    definitions: list[ir.StrategyDefinition] = []
    problems: list[Problem] = []
    for name in RULE_NAMES:
        if name not in chosen:
            continue
        for timeframe in timeframes:
            table = {**BUILTIN[name], "timeframe": timeframe}
            definition, found = define_strategy(name, table, candle_timeframes=candle_timeframes,
                                                overrides=chosen[name], where=f"built-in {name} on {timeframe}")
            problems += found
            if definition is not None:
                definitions.append(definition)
    if problems:
        raise ValueError("; ".join(str(problem) for problem in problems))
    return tuple(definitions)


def indicator_outputs(spec: IndicatorSpec, timeframe: str = ir.TICK) -> list[tuple[str, ir.Indicator]]:
    """The indicator set of a :class:`~processors.core.indicators.IndicatorSpec` as named engine outputs.

    Names are the spec's (``sma_20`` … ``macd``, ``macd_signal``, ``bb_upper`` … ``vwap``), in its
    order. Given as ``outputs`` to :class:`~processors.core.strategies.engine.CompiledStrategies`,
    the engine computes them on shared nodes, bit-identical to
    :class:`~processors.core.indicators.IndicatorEngine` (tests/unit/core/nodes/test_nodes_engine.py):
    the way for a runner to get snapshot values and strategy signals from one computation.
    """
    named: list[tuple[str, ir.Indicator]] = []
    named += [(f"sma_{n}", ir.Indicator("sma", (n,), None, timeframe)) for n in spec.sma]
    named += [(f"ema_{n}", ir.Indicator("ema", (n,), None, timeframe)) for n in spec.ema]
    named += [(f"rsi_{n}", ir.Indicator("rsi", (n,), None, timeframe)) for n in spec.rsi]
    if spec.macd is not None:
        periods = (spec.macd.fast, spec.macd.slow, spec.macd.signal)
        named += [(name, ir.Indicator("macd", periods, member, timeframe))
                  for name, member in (("macd", "line"), ("macd_signal", "signal"), ("macd_hist", "hist"))]
    if spec.bollinger is not None:
        params = (spec.bollinger.period, spec.bollinger.deviations)
        named += [(f"bb_{member}", ir.Indicator("bb", params, member, timeframe))
                  for member in ("upper", "middle", "lower")]
    if spec.vwap:
        named.append(("vwap", ir.Indicator("vwap", (), None, timeframe)))
    return named
