"""Pure planning of a backfill: how long the warm-up is, and how each symbol's range splits into chunks.

Nothing here touches Spark or Kafka; the driver (:mod:`spark_jobs.backfill.job`) feeds it
per-(symbol, UTC day) statistics of the range and gets back one :class:`GroupPlan` per
Spark group. docs/spark.md explains the design; in short:

**Warm-up.** The pipeline state at a position is a function of every earlier tick, but only
weakly of old ones: EMA and Wilder averages are linear recurrences ``s ← f·s + (1−f)·x`` whose
dependence on a start value decays like ``f^t`` (f = (n−1)/(n+1) for EMA(n), (n−1)/n for
RSI(n)); SMA/Bollinger windows forget everything older than their window; VWAP, candles and
the daily aggregate restart at window and UTC-day boundaries. So a run started ``W``
periods before the UTC midnight that opened the symbol's current day reaches the same
state as a run from the log's beginning, to ``tolerance`` relative, where ``W`` is
:func:`warmup_periods` (the seeding length plus ``ln(tolerance)/ln(f_max)`` steps).

**Chunks.** A symbol's range can split at UTC midnights: chunk ``c`` starts after ``b_c``,
the first tick (in log order) at or after midnight ``s_c``, and ends with ``b_{c+1}``
(inclusive — that tick emits the final daily summary of the day before, which chunk ``c``
holds complete). Its warm-up is every tick before ``b_c`` whose event time is at least
``s_c − warm-up duration``: the day that is open at ``b_c`` started at ``b_c`` itself, so
nothing older than the warm-up is needed. Chunks are independent, hence parallel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from processors.core.indicators import IndicatorEngine, IndicatorSpec
from processors.core.strategies import ir
from processors.core.timeutil import DAY_US

POSITION_BITS = 40
"""A log position is ``partition << 40 | offset``: one int64 that orders (partition, offset)."""
DEFAULT_TOLERANCE = 1e-12
DEFAULT_MIN_WARMUP_US = 3_600 * 1_000_000


def position(partition: int, offset: int) -> int:
    return (partition << POSITION_BITS) | offset


def split_position(value: int) -> tuple[int, int]:
    return value >> POSITION_BITS, value & ((1 << POSITION_BITS) - 1)


def _steps(factor: float, tolerance: float) -> int:
    """Steps until ``factor ** steps <= tolerance`` (0 for a recurrence that forgets at once)."""
    if factor <= 0.0:
        return 0
    return math.ceil(math.log(tolerance) / math.log(factor))


def warmup_periods(spec: IndicatorSpec, tolerance: float = DEFAULT_TOLERANCE) -> int:
    """Prices (of one timeframe) a fresh state needs before it matches a full-history state to ``tolerance``.

    The seeding length of the slowest indicator (``IndicatorEngine.warmup``) plus the steps
    after which the slowest recurrence has shrunk a start-value difference by ``tolerance``.
    The MACD signal's error is a sum of two geometric terms (its own and the EMA legs'), i.e.
    at most ``t·f_max^t``: the default tolerance (1e-12) keeps three orders of magnitude of
    margin against the 1e-9 contract for that factor ``t`` (a few hundred).
    """
    if not 0.0 < tolerance < 1.0:
        raise ValueError("tolerance must be between 0 and 1")
    factors = [(n - 1) / (n + 1) for n in spec.ema] + [(n - 1) / n for n in spec.rsi]
    if spec.macd is not None:
        m = spec.macd
        factors += [(n - 1) / (n + 1) for n in (m.fast, m.slow, m.signal)]
    steps = max((_steps(factor, tolerance) for factor in factors), default=0)
    return IndicatorEngine(spec).warmup + steps


_WILDER = ("rsi", "atr", "adx", "plus_di", "minus_di")  # Wilder's smoothing: f = (n−1)/n
CUMULATIVE = ("obv",)
"""Indicators that never forget (OBV sums from the first tick): no warm-up makes a range equal a full run."""


def indicator_warmup(indicator: ir.Indicator, tolerance: float = DEFAULT_TOLERANCE) -> int:
    """Evaluations a fresh rule-language indicator needs to match a full-history one to ``tolerance``.

    Conservative: the sum of its whole-number parameters (every window and seeding, chained ones
    included: ``macd(12, 26, 9)`` seeds 26 then 9, ``stoch(14, 3, 3)`` windows 14, 3 and 3) plus the
    steps after which its slowest recurrence (EMA: (n−1)/(n+1); Wilder's RSI/ATR/ADX/DI: (n−1)/n)
    shrinks a start difference by ``tolerance``; ``highest``/``lowest`` of an indicator add that
    indicator's. A cumulative indicator (:data:`CUMULATIVE`) gives 0: it needs the log's beginning.
    """
    whole = [int(p) for p in indicator.params if isinstance(p, int)]
    factors: list[float] = []
    if indicator.name == "ema":
        factors = [(n - 1) / (n + 1) for n in whole]
    elif indicator.name == "macd":
        factors = [(n - 1) / (n + 1) for n in whole]
    elif indicator.name in _WILDER:
        factors = [(n - 1) / n for n in whole]
    steps = max((_steps(factor, tolerance) for factor in factors), default=0)
    if indicator.name == "adx":
        steps *= 2  # a Wilder average of a value made of Wilder averages: two recurrences in a row
    source = indicator.source
    inner = indicator_warmup(source, tolerance) if isinstance(source, ir.Indicator) else 0
    return sum(whole) + steps + inner


def _history(expression: ir.Expression) -> int:
    """The deepest look-back of an expression: ``x[k]`` offsets, ``rising``/``falling`` lengths, crosses (1)."""
    if isinstance(expression, ir.Past):
        return expression.offset + _history(expression.operand)
    if isinstance(expression, ir.Trend):
        return expression.length + _history(expression.operand)
    if isinstance(expression, ir.Cross):
        return 1 + max(_history(expression.left), _history(expression.right))
    if isinstance(expression, ir.Negate | ir.Not):
        return _history(expression.operand)
    if isinstance(expression, ir.Arithmetic | ir.Compare | ir.Logic):
        return max(_history(expression.left), _history(expression.right))
    return 0


def strategies_warmup(definitions: Iterable[ir.StrategyDefinition],
                      tolerance: float = DEFAULT_TOLERANCE) -> tuple[int, bool]:
    """(periods, cumulative): the evaluations of any timeframe the ``[strategies]`` need before their signals
    match a full run's, and whether one of them reads a cumulative indicator (:data:`CUMULATIVE`).

    Per strategy: its slowest indicator's :func:`indicator_warmup`, plus its deepest history and its
    ``confirm`` (a signal needs the previous evaluations defined). Cooldowns last event time, not
    evaluations: a cooldown longer than the warm-up duration is not covered (docs/spark.md).
    """
    periods, cumulative = 0, False
    for definition in definitions:
        conditions = [c for c in (definition.buy, definition.sell) if c is not None]
        indicators = [leaf for c in conditions for leaf in ir.leaves(c) if isinstance(leaf, ir.Indicator)]
        cumulative = cumulative or any(leaf.name in CUMULATIVE for leaf in indicators)
        slowest = max((indicator_warmup(leaf, tolerance) for leaf in indicators), default=0)
        history = max((_history(c) for c in conditions), default=0)
        periods = max(periods, slowest + history + definition.confirm)
    return periods, cumulative


@dataclass(frozen=True)
class Warmup:
    """The warm-up of a backfill: ``periods`` prices per timeframe, at least ``duration_us`` of event time."""

    periods: int
    duration_us: int
    longest_candle_us: int = 0  # the candle timeframe that needs the longest time for ``periods`` candles

    @classmethod
    def for_specs(cls, specs: Iterable[IndicatorSpec], candle_lengths_us: Sequence[int],
                  tolerance: float = DEFAULT_TOLERANCE, min_duration_us: int = DEFAULT_MIN_WARMUP_US,
                  periods: int | None = None) -> Warmup:
        """``periods`` (default: :func:`warmup_periods` of the slowest spec) candles of the longest timeframe.

        The tick timeframe needs ``periods`` ticks; that is checked per group after the fact
        (the group report says ``short`` when a sparse symbol had fewer).
        """
        chosen = periods if periods is not None else max(warmup_periods(spec, tolerance) for spec in specs)
        longest = max(candle_lengths_us, default=0)
        return cls(chosen, max(chosen * longest, min_duration_us), longest)


@dataclass(frozen=True)
class DayStat:
    """What the driver's first pass found for one symbol and UTC day, over the rows at or after the range start.

    ``first`` is the smallest position of a usable tick (parseable event time, price and
    volume within bounds) of that day, None when it has none; ``last`` the largest position
    inside the range's end.
    """

    day: int
    rows: int
    first: int | None
    last: int | None


@dataclass(frozen=True)
class GroupPlan:
    """One Spark group: a chunk of one symbol's range and where its warm-up comes from.

    Emits the rows with ``emit_from <= position <= emit_to``. ``start_us`` is the chunk's UTC
    midnight (None for the first chunk, which starts at the range start and is warmed by
    whatever the driver read before it); ``warm_from_us`` the oldest event time routed to it.
    """

    group: int
    key: str | None
    chunk: int
    emit_from: int
    emit_to: int
    start_us: int | None
    warm_from_us: int | None
    rows: int


@dataclass(frozen=True)
class SymbolRange:
    key: str | None
    first: int  # position of the range's first row of this symbol
    last: int  # position of its last row (inclusive)
    days: tuple[DayStat, ...]

    @property
    def rows(self) -> int:
        return sum(day.rows for day in self.days)

    @property
    def span_us(self) -> int:
        days = [day.day for day in self.days]
        return (max(days) - min(days) + 1) * DAY_US if days else 0


def split_days(days: Sequence[DayStat], chunks: int) -> list[int]:
    """Indexes into ``days`` (sorted, > 0, increasing) where chunks 1.. start: for each ideal share
    ``k·total/chunks`` the day boundary whose row count before it comes closest."""
    total = sum(day.rows for day in days)
    if chunks <= 1 or len(days) < 2 or total == 0:
        return []
    before = [0]
    for day in days:
        before.append(before[-1] + day.rows)
    cuts: list[int] = []
    for share in range(1, chunks):
        target = total * share / chunks
        candidates = range((cuts[-1] + 1) if cuts else 1, len(days))
        if not candidates:
            break
        best = min(candidates, key=lambda index: abs(before[index] - target))
        if not cuts or best > cuts[-1]:
            cuts.append(best)
    return cuts


def auto_chunks(symbol: SymbolRange, total_rows: int, slots: int, warmup: Warmup) -> int:
    """How many chunks to cut a symbol into: enough groups to keep ``slots`` cores busy
    (about two groups per core over all symbols), never a chunk shorter than four warm-ups.
    """
    if total_rows == 0 or symbol.rows == 0:
        return 1
    target = max(1, total_rows // max(1, 2 * slots))
    wanted = max(1, round(symbol.rows / target))
    longest = max(1, symbol.span_us // max(1, 4 * warmup.duration_us))
    return max(1, min(wanted, longest, len(symbol.days)))


def plan_groups(symbols: Sequence[SymbolRange], warmup: Warmup, chunks: int | None, slots: int) -> list[GroupPlan]:
    """Every group of the backfill, numbered largest first (so Spark starts the long ones first).

    ``chunks`` fixes the chunks per symbol (1 = no split); None chooses with :func:`auto_chunks`.
    """
    total = sum(symbol.rows for symbol in symbols)
    drafts: list[tuple[int, GroupPlan]] = []
    for symbol in symbols:
        days = sorted(symbol.days, key=lambda day: day.day)
        wanted = chunks if chunks is not None else auto_chunks(symbol, total, slots, warmup)
        starts: list[tuple[int, int, int]] = []  # (day index, midnight µs, first position at/after it)
        suffix_first: list[int | None] = [None] * len(days)
        best: int | None = None
        for index in range(len(days) - 1, -1, -1):
            first = days[index].first
            if first is not None and (best is None or first < best):
                best = first
            suffix_first[index] = best
        for index in split_days(days, wanted):
            boundary = suffix_first[index]
            if boundary is None or not symbol.first < boundary <= symbol.last:
                continue
            if starts and boundary <= starts[-1][2]:
                continue
            starts.append((index, days[index].day * DAY_US, boundary))
        bounds = [symbol.first, *(boundary for _, _, boundary in starts)]
        for chunk in range(len(bounds)):
            emit_from = bounds[chunk] if chunk == 0 else bounds[chunk] + 1
            emit_to = bounds[chunk + 1] if chunk + 1 < len(bounds) else symbol.last
            begin = 0 if chunk == 0 else starts[chunk - 1][0]
            end = starts[chunk][0] if chunk < len(starts) else len(days)
            rows = sum(day.rows for day in days[begin:end])
            start_us = None if chunk == 0 else starts[chunk - 1][1]
            drafts.append((rows, GroupPlan(
                group=-1, key=symbol.key, chunk=chunk, emit_from=emit_from, emit_to=emit_to, start_us=start_us,
                warm_from_us=None if start_us is None else start_us - warmup.duration_us, rows=rows,
            )))
    drafts.sort(key=lambda item: (-item[0], item[1].key or "", item[1].chunk))
    return [GroupPlan(group=number, key=plan.key, chunk=plan.chunk, emit_from=plan.emit_from,
                      emit_to=plan.emit_to, start_us=plan.start_us, warm_from_us=plan.warm_from_us, rows=plan.rows)
            for number, (_, plan) in enumerate(drafts)]
