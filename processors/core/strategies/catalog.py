"""The indicators of the rule language: their parameters, lines, column names and nodes.

One table, :data:`CATALOG`, says what ``ema(12)`` or ``stoch(14, 3, 3).k`` may be written as
(checked by :mod:`.resolve`), and :func:`node_output` says which node line computes it
(used by :mod:`.compiler`). :func:`column_name` gives the name a value has in outputs
(``ema_12``, ``stoch_14_3_3_k``, ``macd_12_26_9_signal``). Period bounds follow TA-Lib's,
capped at 10 000 like the strategy file's periods. Definitions: docs/core.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from processors.core.nodes.averages import Bands, Ema, Macd, Rsi, Vwap, Window, Wma
from processors.core.nodes.base import Bar, Output, Source
from processors.core.nodes.momentum import Obv, Roc
from processors.core.nodes.ranges import Atr, Cci, Directional, Extreme, FastK, WilliamsR
from processors.core.strategies import ir

MAX_PERIOD = 10_000


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter: a whole-number period in [least, MAX_PERIOD], or a positive real ≤ ``most``."""

    name: str
    least: int = 1
    whole: bool = True
    most: float = MAX_PERIOD

    def problem(self, value: int | float) -> str | None:
        """Why ``value`` cannot be this parameter, or None."""
        if self.whole:
            if not (isinstance(value, int) or float(value).is_integer()):
                return f"{self.name} must be a whole number, got {ir.format_number(value)}"
            if not self.least <= value <= self.most:
                return f"{self.name} must be between {self.least} and {int(self.most)}, got {ir.format_number(value)}"
            return None
        if not (math.isfinite(value) and 0 < value <= self.most):
            return f"{self.name} must be above 0 and at most {ir.format_number(self.most)}, got {value!r}"
        return None


@dataclass(frozen=True, slots=True)
class IndicatorInfo:
    """What the language knows of one indicator."""

    name: str
    parameters: tuple[Parameter, ...]
    members: tuple[str, ...] = ()  # the lines of a multi-line indicator; () for one line
    takes_source: bool = False  # highest/lowest: the first argument is a series
    summary: str = ""

    def signature(self) -> str:
        arguments = (["x"] if self.takes_source else []) + [p.name for p in self.parameters]
        text = f"{self.name}({', '.join(arguments)})"
        return text + (f".{'|'.join(self.members)}" if self.members else "")


def _periods(*names: str, least: int = 1) -> tuple[Parameter, ...]:
    return tuple(Parameter(name, least) for name in names)


CATALOG: dict[str, IndicatorInfo] = {info.name: info for info in (
    IndicatorInfo("sma", _periods("n"), summary="simple moving average of the close"),
    IndicatorInfo("ema", _periods("n"), summary="exponential moving average of the close"),
    IndicatorInfo("wma", _periods("n", least=2), summary="linearly weighted moving average of the close"),
    IndicatorInfo("rsi", _periods("n"), summary="Wilder's relative strength index"),
    IndicatorInfo("macd", _periods("fast", "slow", "signal"), ("line", "signal", "hist"), summary="MACD"),
    IndicatorInfo("bb", (Parameter("n"), Parameter("k", whole=False, most=100.0)), ("upper", "middle", "lower"),
                  summary="Bollinger bands"),
    IndicatorInfo("vwap", (), summary="volume-weighted average price since UTC midnight"),
    IndicatorInfo("atr", _periods("n"), summary="Wilder's average true range"),
    IndicatorInfo("stoch", _periods("k", "d", "smooth"), ("k", "d"), summary="slow stochastic %K and %D"),
    IndicatorInfo("adx", _periods("n", least=2), summary="average directional index"),
    IndicatorInfo("plus_di", _periods("n", least=2), summary="plus directional indicator"),
    IndicatorInfo("minus_di", _periods("n", least=2), summary="minus directional indicator"),
    IndicatorInfo("obv", (), summary="on-balance volume"),
    IndicatorInfo("cci", _periods("n", least=2), summary="commodity channel index"),
    IndicatorInfo("willr", _periods("n", least=2), summary="Williams %R"),
    IndicatorInfo("roc", _periods("n"), summary="rate of change in percent"),
    IndicatorInfo("highest", _periods("n", least=2), takes_source=True, summary="highest x of the last n"),
    IndicatorInfo("lowest", _periods("n", least=2), takes_source=True, summary="lowest x of the last n"),
    IndicatorInfo("donchian", _periods("n", least=2), ("upper", "lower"),
                  summary="Donchian channel: highest high / lowest low of the last n"),
)}


def indicator_problems(indicator: ir.Indicator) -> list[str]:
    """Relations between parameters that single bounds cannot say (empty when fine)."""
    if indicator.name == "macd" and indicator.params[0] >= indicator.params[1]:
        return [f"macd's fast period ({ir.format_number(indicator.params[0])}) must be shorter than its slow"
                f" period ({ir.format_number(indicator.params[1])})"]
    return []


def column_name(indicator: ir.Indicator) -> str:
    """The output name of an indicator line: ``ema_12``, ``macd_12_26_9_signal``, ``highest_close_20``.

    The timeframe is not part of it (outputs are per timeframe).
    """
    parts = [indicator.name]
    if indicator.source is not None:
        source = indicator.source
        parts.append(source.name if isinstance(source, ir.PriceField) else column_name(source))
    parts += [ir.format_number(p) for p in indicator.params]
    if indicator.member is not None:
        parts.append(indicator.member)
    return "_".join(parts)


def _period(indicator: ir.Indicator, index: int = 0) -> int:
    return int(indicator.params[index])


def _source(series: ir.PriceField | ir.Indicator) -> Source:
    if isinstance(series, ir.PriceField):
        return Bar(series.name)
    return node_output(series)


def node_output(indicator: ir.Indicator) -> Output:
    """The node line that computes ``indicator`` (its timeframe aside: nodes are per timeframe).

    Equal indicators give equal nodes, so the compiler shares them; multi-line indicators
    share their node across lines (``macd(…).line`` and ``.signal`` are one node).
    """
    name = indicator.name
    if name == "sma":
        return Output(Window(_period(indicator)))
    if name == "ema":
        return Output(Ema(_period(indicator)))
    if name == "wma":
        return Output(Wma(_period(indicator)))
    if name == "rsi":
        return Output(Rsi(_period(indicator)))
    if name == "roc":
        return Output(Roc(_period(indicator)))
    if name == "vwap":
        return Output(Vwap())
    if name == "obv":
        return Output(Obv())
    if name == "atr":
        return Output(Atr(_period(indicator)))
    if name == "cci":
        return Output(Cci(_period(indicator)))
    if name == "macd":
        node = Macd(Ema(_period(indicator, 0)), Ema(_period(indicator, 1)), _period(indicator, 2))
        return Output(node, node.outputs.index(indicator.member or ""))
    if name == "bb":
        bands = Bands(Window(_period(indicator)), float(indicator.params[1]))
        return Output(bands, bands.outputs.index(indicator.member or ""))
    if name in ("adx", "plus_di", "minus_di"):
        directional = Directional(_period(indicator))
        return Output(directional, directional.outputs.index(name))
    if name in ("highest", "lowest"):
        assert indicator.source is not None  # noqa: S101 - the resolver guarantees it
        return Output(Extreme(_period(indicator), _source(indicator.source), name == "highest"))
    if name == "donchian":
        n = _period(indicator)
        upper = indicator.member == "upper"
        return Output(Extreme(n, Bar("high" if upper else "low"), upper))
    if name == "willr":
        n = _period(indicator)
        return Output(WilliamsR(Extreme(n, Bar("high"), True), Extreme(n, Bar("low"), False)))
    if name == "stoch":
        k, d, smooth = (_period(indicator, i) for i in range(3))
        line = Output(FastK(Extreme(k, Bar("high"), True), Extreme(k, Bar("low"), False)))
        if smooth > 1:  # TA-Lib copies the series for a period of 1
            line = Output(Window(smooth, line))
        if indicator.member == "d" and d > 1:
            line = Output(Window(d, line))
        return line
    raise ValueError(f"unknown indicator {name!r}")
