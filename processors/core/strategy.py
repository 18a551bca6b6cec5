"""The strategy file: indicator periods, rule thresholds, enabled rules, per-symbol overrides.

A strategy is TOML (``.toml``) or YAML (``.yaml``/``.yml``), validated strictly at load
(unknown keys, wrong types, impossible periods and rules that need an indicator that is
not computed are errors with their location). Every key is optional; the defaults are the
contract of MISSION.md, so an empty file is the default strategy. Example (the defaults)::

    [indicators]
    sma = [20, 50]
    ema = [12, 26]
    rsi = [14]
    vwap = true
    macd = { enabled = true, fast = 12, slow = 26, signal = 9 }
    bollinger = { enabled = true, period = 20, deviations = 2.0 }

    [rules]
    rsi_reversal = { enabled = true, period = 14, oversold = 30, overbought = 70 }
    ema_cross = { enabled = true, fast = 12, slow = 26 }
    macd_cross = { enabled = true }
    seed_rsi_ema = { enabled = true, rsi_period = 14, ema_period = 12, oversold = 30, overbought = 70 }

    [symbols."ETH-USD".rules.rsi_reversal]   # per-symbol override, merged over the base
    oversold = 25

    [strategies.trend_pullback]              # rule-language strategies beside the rules (docs/core.md)
    timeframe = "5m"
    buy = "crosses_above(ema(9), ema(21)) and close > sma(50)@1h"
    sell = "crosses_below(ema(9), ema(21))"

Runners build a :class:`~processors.core.pipeline.PipelineConfig` per symbol with
:meth:`Strategy.pipeline_config` (or the caching :class:`PipelineConfigs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from processors.core.config_errors import PathPart, Problem, Problems, problems_from_validation
from processors.core.config_file import ConfigDocument, ConfigFileError, load_document, parse_document
from processors.core.indicators import BollingerSpec, IndicatorSpec, MacdSpec
from processors.core.pipeline import PipelineConfig
from processors.core.rules import (
    EmaCross,
    MacdCross,
    RsiReversal,
    RuleConfigError,
    RuleEngine,
    RuleSpec,
    SeedRsiEma,
)
from processors.core.strategies.file import (
    StrategyFileError,
    candle_timeframes_named,
    strategies_from_mapping,
)
from processors.core.strategies.ir import StrategyDefinition
from schemas.symbols import InvalidSymbolError, normalize_symbol

Period = Annotated[int, Field(ge=1, le=10_000)]
Level = Annotated[float, Field(ge=0, le=100)]


class StrategyError(ConfigFileError):
    """The strategy file is missing, unreadable or invalid; the message lists every problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class MacdSettings(_Section):
    enabled: bool = True
    fast: Period = 12
    slow: Period = 26
    signal: Period = 9

    @model_validator(mode="after")
    def _fast_before_slow(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class BollingerSettings(_Section):
    enabled: bool = True
    period: Period = 20
    deviations: Annotated[float, Field(gt=0, le=100)] = 2.0


class IndicatorSettings(_Section):
    sma: list[Period] = Field(default_factory=lambda: [20, 50])
    ema: list[Period] = Field(default_factory=lambda: [12, 26])
    rsi: list[Period] = Field(default_factory=lambda: [14])
    macd: MacdSettings = Field(default_factory=MacdSettings)
    bollinger: BollingerSettings = Field(default_factory=BollingerSettings)
    vwap: bool = True

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        for family in ("sma", "ema", "rsi"):
            periods = getattr(self, family)
            if len(set(periods)) != len(periods):
                raise ValueError(f"{family} periods repeat: {periods}")
        return self

    def spec(self) -> IndicatorSpec:
        return IndicatorSpec(
            sma=tuple(self.sma), ema=tuple(self.ema), rsi=tuple(self.rsi),
            macd=MacdSpec(self.macd.fast, self.macd.slow, self.macd.signal) if self.macd.enabled else None,
            bollinger=(BollingerSpec(self.bollinger.period, self.bollinger.deviations)
                       if self.bollinger.enabled else None),
            vwap=self.vwap,
        )


class _Thresholds(_Section):
    oversold: Level = 30.0
    overbought: Level = 70.0

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.oversold >= self.overbought:
            raise ValueError(f"oversold ({self.oversold}) must be below overbought ({self.overbought})")
        return self


class RsiReversalSettings(_Thresholds):
    enabled: bool = True
    period: Period = 14


class EmaCrossSettings(_Section):
    enabled: bool = True
    fast: Period = 12
    slow: Period = 26

    @model_validator(mode="after")
    def _fast_before_slow(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class MacdCrossSettings(_Section):
    enabled: bool = True


class SeedRsiEmaSettings(_Thresholds):
    enabled: bool = True
    rsi_period: Period = 14
    ema_period: Period = 12


class RuleSettings(_Section):
    rsi_reversal: RsiReversalSettings = Field(default_factory=RsiReversalSettings)
    ema_cross: EmaCrossSettings = Field(default_factory=EmaCrossSettings)
    macd_cross: MacdCrossSettings = Field(default_factory=MacdCrossSettings)
    seed_rsi_ema: SeedRsiEmaSettings = Field(default_factory=SeedRsiEmaSettings)

    def spec(self) -> RuleSpec:
        r, e, m, s = self.rsi_reversal, self.ema_cross, self.macd_cross, self.seed_rsi_ema
        return RuleSpec(
            rsi_reversal=RsiReversal(r.period, r.oversold, r.overbought) if r.enabled else None,
            ema_cross=EmaCross(e.fast, e.slow) if e.enabled else None,
            macd_cross=MacdCross() if m.enabled else None,
            seed_rsi_ema=SeedRsiEma(s.rsi_period, s.ema_period, s.oversold, s.overbought) if s.enabled else None,
        )


class SymbolStrategy(_Section):
    """The resolved settings of one symbol (the base with that symbol's override merged in)."""

    indicators: IndicatorSettings = Field(default_factory=IndicatorSettings)
    rules: RuleSettings = Field(default_factory=RuleSettings)

    @model_validator(mode="after")
    def _rules_have_their_indicators(self) -> Self:
        try:
            RuleEngine(self.rules.spec(), self.indicators.spec().names())
        except RuleConfigError as error:
            raise ValueError(str(error)) from None
        return self


class Strategy(SymbolStrategy):
    """A whole strategy file. ``symbols`` maps a symbol to a partial override of the base."""

    name: str = "default"
    description: str = ""
    symbols: dict[str, dict[str, Any]] = Field(default_factory=dict)
    strategies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """``[strategies.NAME]`` tables of the rule language, resolved against the runner's timeframes."""
    _resolved: dict[str, SymbolStrategy] = PrivateAttr(default_factory=dict)
    _definitions: dict[tuple[str, ...], tuple[StrategyDefinition, ...]] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr(default="<strategy>")

    @model_validator(mode="after")
    def _resolve_overrides(self) -> Self:
        base = self.model_dump(include={"indicators", "rules"})
        problems: list[Problem] = []
        for raw_symbol, override in self.symbols.items():
            where: tuple[PathPart, ...] = ("symbols", raw_symbol)
            try:
                symbol = normalize_symbol(raw_symbol)
            except InvalidSymbolError as error:
                problems.append(Problem(where, str(error)))
                continue
            if symbol in self._resolved:
                problems.append(Problem(where, f"{symbol} is overridden twice"))
                continue
            merged = _merge(base, override)
            try:
                self._resolved[symbol] = SymbolStrategy.model_validate(merged)
            except ValidationError as error:
                problems += [problem.under(where) for problem in
                             problems_from_validation(error, override, SymbolStrategy)]
        if problems:
            raise Problems(problems)
        return self

    def for_symbol(self, symbol: str) -> SymbolStrategy:
        """The settings that apply to ``symbol`` (a normalized symbol)."""
        return self._resolved.get(symbol, self)

    def pipeline_config(self, symbol: str, **pipeline: Any) -> PipelineConfig:
        """A :class:`~processors.core.pipeline.PipelineConfig` for ``symbol``.

        ``pipeline`` holds the runner's own settings (``candle_timeframes``, ``grace_ms``,
        ``summary_every_ticks``); the strategy supplies indicators and rules.
        """
        chosen = self.for_symbol(symbol)
        definitions = self.definitions(tuple(pipeline.get("candle_timeframes", PipelineConfig.candle_timeframes)))
        try:
            return PipelineConfig(indicators=chosen.indicators.spec(), rules=chosen.rules.spec(),
                                  strategies=definitions, **pipeline)
        except ValueError as error:
            if not definitions:
                raise
            raise StrategyError(f"{self._source}: invalid strategies: {error}") from None

    def definitions(self, candle_timeframes: tuple[str, ...]) -> tuple[StrategyDefinition, ...]:
        """The ``[strategies]`` tables resolved for these candle timeframes (cached); :class:`StrategyError`
        lists every problem (parse errors with columns, unknown indicators, timeframes not configured)."""
        found = self._definitions.get(candle_timeframes)
        if found is None:
            try:
                found = () if not self.strategies else strategies_from_mapping(
                    {"strategies": self.strategies}, source=self._source, candle_timeframes=candle_timeframes)
            except StrategyFileError as error:
                raise StrategyError(str(error)) from None
            self._definitions[candle_timeframes] = found
        return found

    def candle_timeframes_named(self) -> tuple[str, ...]:
        """The candle timeframes the ``[strategies]`` tables run on or read with ``@tf`` (valid ones, in order of
        first mention): what a runner that builds the candles its strategies need (the batch CLI) adds."""
        return candle_timeframes_named(self.strategies)

    def indicator_names(self) -> tuple[str, ...]:
        """Every indicator name any symbol can output: the base's, then the overrides' extras."""
        names = list(self.indicators.spec().names())
        for resolved in self._resolved.values():
            names += [name for name in resolved.indicators.spec().names() if name not in names]
        return tuple(names)


DEFAULT_STRATEGY = Strategy()


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` deep-merged over ``base`` (tables merge, everything else replaces)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_strategy(text: str, *, syntax: str, source: str = "<strategy>") -> Strategy:
    """Parse and validate strategy text; ``syntax`` is ``toml`` or ``yaml``.

    Raises :class:`StrategyError` naming ``source`` and every problem found, with its line.
    """
    return _validate(parse_document(text, syntax, source, "strategy file", StrategyError))


def load_strategy(path: str | Path) -> Strategy:
    """Read a strategy file chosen by extension (.toml, .yaml, .yml). Called once at start."""
    return _validate(load_document(Path(path), "strategy file", StrategyError))


def _validate(document: ConfigDocument) -> Strategy:
    try:
        strategy = Strategy.model_validate(document.data)
    except ValidationError as error:
        raise document.invalid(document.validation_problems(error, Strategy)) from None
    strategy._source = document.source
    return strategy


class PipelineConfigs:
    """Per-symbol pipeline configs of one strategy, built once per symbol (for runners)."""

    def __init__(self, strategy: Strategy = DEFAULT_STRATEGY, **pipeline: Any) -> None:
        self.strategy = strategy
        self._pipeline = pipeline
        self._configs: dict[str, PipelineConfig] = {}
        strategy.pipeline_config("CHECK", **pipeline)  # fail at start on bad runner settings

    def for_symbol(self, symbol: str) -> PipelineConfig:
        config = self._configs.get(symbol)
        if config is None:
            config = self._configs[symbol] = self.strategy.pipeline_config(symbol, **self._pipeline)
        return config
