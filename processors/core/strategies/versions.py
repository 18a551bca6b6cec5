"""The version of a strategy file: one hash of what decides its outputs, for runs and for the live guard.

Runs record it (``schemas/runs.py``: ``StrategyRef.version``), ``runs diff`` shows it, and the
stream processor compares it with the version the live state was built with before it starts
(a different one is refused unless deployed by shadow + promote, docs/runs.md). Built on the
strategies' own version function (:attr:`~processors.core.strategies.ir.StrategyDefinition.version`:
16 hex digits over the normalized definition), so renaming a strategy or reformatting a rule
keeps the version and changing a number changes it. Both file formats are covered:

- a rule-language file (``[strategies.NAME]`` tables, :mod:`.file`): every definition's
  (name, timeframe, version);
- an indicator/rule file (``[indicators]``/``[rules]``, :mod:`processors.core.strategy`) and the
  default strategy (no file): its rules as the built-in strategies of the language
  (:mod:`.builtin`, one per rule and timeframe) plus the indicator set (snapshots are outputs
  too), for the base and for every symbol override.

The candle timeframes are part of the version: they decide which candles, snapshots and
signals exist. Pure: the caller reads the file (``strategy_file_text``) and passes the text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from processors.core.config_file import ConfigFileError, parse_mapping, read_text, syntax_of
from processors.core.strategies.builtin import builtin_strategies
from processors.core.strategies.file import strategies_from_mapping
from processors.core.strategies.ir import TICK
from processors.core.strategy import DEFAULT_STRATEGY, Strategy, StrategyError, SymbolStrategy, parse_strategy
from schemas.symbols import normalize_symbol

VERSION_FORMAT = 1
"""Bumped when what goes into a version changes (every version changes with it)."""


def strategy_file_text(path: str | Path) -> tuple[str, str]:
    """The text and syntax (``toml``/``yaml``) of a strategy file; raises :class:`StrategyError` naming it."""
    path = Path(path)
    syntax = syntax_of(path, "strategy file", StrategyError)
    return read_text(path, "strategy file", StrategyError), syntax


def _rules_layout(chosen: SymbolStrategy, timeframes: Sequence[str]) -> dict[str, Any]:
    spec = chosen.indicators.spec()
    try:
        definitions = builtin_strategies(chosen.rules.spec(), spec.macd, (TICK, *timeframes))
        rules: object = [[d.name, d.timeframe, d.version] for d in definitions]
    except ValueError:
        # Parameters the language refuses (none today): the validated settings themselves.
        rules = chosen.rules.model_dump(mode="json")
    return {"indicators": spec.key(), "rules": rules}


def describe(text: str | None, *, syntax: str | None, candle_timeframes: Sequence[str],
             source: str = "<strategy>") -> dict[str, Any]:
    """The normalized content a version hashes (JSON values). ``text`` None: the default strategy.

    Raises :class:`~processors.core.config_file.ConfigFileError` (a ``StrategyError`` or a
    ``StrategyFileError``) when the text is not a valid strategy of either format.
    """
    timeframes = sorted(candle_timeframes)
    if text is None:
        return {"format": VERSION_FORMAT, "kind": "rules", "timeframes": timeframes,
                "base": _rules_layout(DEFAULT_STRATEGY, timeframes), "symbols": {}}
    if syntax is None:
        raise ConfigFileError(f"{source}: the strategy's syntax (toml or yaml) is needed with its text")
    raw = parse_mapping(text, syntax, source, "strategy", StrategyError)
    if "strategies" in raw:
        definitions = strategies_from_mapping(raw, source=source, candle_timeframes=candle_timeframes)
        return {"format": VERSION_FORMAT, "kind": "strategies", "timeframes": timeframes,
                "strategies": sorted([d.name, d.timeframe, d.version] for d in definitions)}
    strategy: Strategy = parse_strategy(text, syntax=syntax, source=source)
    symbols = {}
    for raw_symbol in strategy.symbols:
        symbol = normalize_symbol(raw_symbol)
        symbols[symbol] = _rules_layout(strategy.for_symbol(symbol), timeframes)
    return {"format": VERSION_FORMAT, "kind": "rules", "timeframes": timeframes,
            "base": _rules_layout(strategy, timeframes), "symbols": symbols}


def strategy_version(text: str | None, *, syntax: str | None, candle_timeframes: Sequence[str],
                     source: str = "<strategy>") -> str:
    """16 hex digits of SHA-256 over :func:`describe`: equal strategies and timeframes, equal versions."""
    content = json.dumps(describe(text, syntax=syntax, candle_timeframes=candle_timeframes, source=source),
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]
