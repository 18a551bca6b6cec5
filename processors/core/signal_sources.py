"""Which strategy a signal comes from: its name, version and the condition text that fired.

Called by :class:`processors.core.pipeline.PipelineConfig` once per config (cached). A pipeline
runs two kinds of strategies side by side:

- the **fixed rules** of the strategy file's ``[rules]`` (``rsi_reversal``, ``ema_cross``,
  ``macd_cross``, ``seed_rsi_ema``, on ``tick`` and on every candle timeframe). They stay on
  :class:`~processors.core.rules.RuleEngine`, the fast path ("Seams for phase 2" in
  docs/core.md), and their signals are labelled with the matching built-in strategy of the
  language (:func:`~processors.core.strategies.builtin.builtin_strategies`): the same name, its
  version and its condition text. The built-ins are proven signal for signal equal to the rules
  (tests/unit/core/strategies/test_builtin.py), so the label is the truth;
- the **strategies** of the file's ``[strategies.NAME]`` tables, compiled once into a
  :class:`~processors.core.strategies.engine.CompiledStrategies`.

A signal's identity is (strategy name, timeframe); ``strategy_version`` is 16 hex digits of
SHA-256 over the strategy's normalized definition (:attr:`ir.StrategyDefinition.version`: the
rules in canonical form, timeframe, confirm, cooldown and symbols; the name and the formatting
of the file aside). Raises ``ValueError`` listing every problem (a strategy whose name and
timeframe clash with an enabled rule, a condition too long for a signal).
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import NamedTuple

from processors.core.indicators import MacdSpec
from processors.core.rules import BUY, SELL, RuleSpec
from processors.core.strategies import ir
from processors.core.strategies.builtin import builtin_strategies
from processors.core.strategies.engine import CompiledStrategies, Fired
from schemas.events import MAX_CONDITION_LENGTH
from schemas.timeframes import TICK


class SignalSource(NamedTuple):
    """What a signal says about the strategy that fired it."""

    name: str
    version: str
    condition: str


@functools.lru_cache(maxsize=256)
def _rule_sources(rules: RuleSpec, macd: MacdSpec | None,
                  timeframes: tuple[str, ...]) -> dict[tuple[str, str, str], SignalSource]:
    found: dict[tuple[str, str, str], SignalSource] = {}
    for definition in builtin_strategies(rules, macd, timeframes):
        version = definition.version
        found[(definition.name, definition.timeframe, BUY)] = SignalSource(definition.name, version,
                                                                          definition.buy_source)
        found[(definition.name, definition.timeframe, SELL)] = SignalSource(definition.name, version,
                                                                           definition.sell_source)
    return found


@functools.lru_cache(maxsize=64)
def _compiled(strategies: tuple[ir.StrategyDefinition, ...], candle_timeframes: tuple[str, ...]) -> CompiledStrategies:
    """One :class:`CompiledStrategies` for equal strategies and timeframes (stateless, so the per-symbol configs of a
    runner share it and its plans: a plan's generated code is compiled once, not once per symbol)."""
    return CompiledStrategies(strategies, candle_timeframes=candle_timeframes)


class SignalSources:
    """The labels of the fixed rules' signals and the compiled strategies of one config."""

    __slots__ = ("rules", "compiled", "key", "strategies")

    def __init__(self, rules: RuleSpec, macd: MacdSpec | None, candle_timeframes: Collection[str],
                 strategies: tuple[ir.StrategyDefinition, ...]) -> None:
        timeframes = (TICK, *candle_timeframes)
        self.rules = _rule_sources(rules, macd, timeframes) if rules.enabled() else {}
        problems: list[str] = []
        for definition in strategies:
            if (definition.name, definition.timeframe, BUY) in self.rules:
                problems.append(f"strategy {definition.name} on {definition.timeframe}: the rule of that name"
                                f" runs there already (rename the strategy or disable rules.{definition.name})")
            for side, text in ((BUY, definition.buy_source), (SELL, definition.sell_source)):
                if len(text) > MAX_CONDITION_LENGTH:
                    problems.append(f"strategy {definition.name}: its {side.lower()} condition is longer than"
                                    f" {MAX_CONDITION_LENGTH} characters")
        compiled: CompiledStrategies | None = None
        if strategies:
            try:
                compiled = _compiled(strategies, tuple(candle_timeframes))
            except ValueError as error:
                problems.append(str(error))
        if problems:
            raise ValueError("; ".join(problems))
        self.compiled = compiled
        self.key = "" if compiled is None else compiled.key
        """Part of the pipeline state's key: changes whenever the compiled strategies do."""
        self.strategies: dict[tuple[int, str], SignalSource] = {}
        """The labels of the compiled strategies' sides by (position, side), made once (see :meth:`strategy`)."""
        for one in () if compiled is None else compiled.strategies:
            definition = one.definition
            self.strategies[(one.position, BUY)] = SignalSource(one.name, one.version, definition.buy_source)
            self.strategies[(one.position, SELL)] = SignalSource(one.name, one.version, definition.sell_source)

    def strategy(self, fired: Fired) -> SignalSource:
        """The label of a compiled strategy's side that fired: its name, version and condition text."""
        return self.strategies[(fired.strategy.position, fired.side)]

    def rule(self, name: str, timeframe: str, side: str) -> SignalSource:
        """The label of fixed rule ``name``'s ``side`` on ``timeframe``."""
        return self.rules[(name, timeframe, side)]
