"""``runs diff``: the signals of two runs compared over the input range they share.

Called by ``stockstream runs diff A B`` (``stockstream/commands/runs.py``), which reads both runs'
``signals`` topics; pure (no Kafka). A signal's **position** is what fired where: instrument,
timeframe, rule and event time. Two runs agree on a position when they fired there with the same
side, price and indicator values; a position one run fired and the other did not is "only in"
that run; a position both fired with another side, price or values is "changed".

The common range is per partition of the ticks log: from the later start to the earlier end of
the two runs (an open end is the log's end). A signal counts when the tick that caused it
(``lineage``) lies in that range, so runs over different ranges compare where they overlap.

A candle timeframe's signal is the exception to "caused by its tick": its ``lineage`` is the last
tick of the window, but it fires when the window *closes* — at a later record, the first that
brings the partition's stream time to the window's end + grace (docs/core.md, "Live candles and
quiet feeds"). A run that ended between the two never fired it, and live, which went on, did
(reproduced in batch; most likely why ``runs diff live same`` found differences with equal
scorecards in a CI run of 2026-12-07). So a signal that only one run has, on a candle timeframe,
is a difference only when the other run's input closed its window; otherwise it is **unclosed** —
listed apart, not a difference. ``diff_signals`` asks ``closes`` (:func:`closes_window` over the
ticks after the signal's own, up to the other run's end; the CLI reads them from the log:
``WindowCloses`` in ``stockstream/commands/runs.py``).

Scorecards side by side (:func:`diff_scorecards`): each run's scorecards
(:mod:`processors.core.scorecard`) over the same common range — an outcome counts when both the
tick of its signal and the tick that matured it (the outcome's ``lineage``) lie in the range, so
a run that stopped earlier is not compared with outcomes the other could not see yet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.core.pipeline import PipelineConfig
from processors.core.scorecard import Card, CardKey, Scorecards
from processors.core.timeutil import DAY_US, to_us
from schemas.events import Signal, SignalOutcome, Tick
from schemas.timeframes import TICK

Position = tuple[str, str, str, str, str]
"""(symbol, venue, timeframe, rule, ts_event ISO): where a signal fired."""


@dataclass(frozen=True)
class Span:
    """A run's input range per partition: ``start <= offset < end`` (``end`` None: open)."""

    start: Mapping[int, int]
    end: Mapping[int, int] | None

    def contains(self, partition: int, offset: int) -> bool:
        if offset < self.start.get(partition, 0):
            return False
        return self.end is None or offset < self.end.get(partition, 0)


def common(first: Span, second: Span) -> Span:
    """The range both spans cover, per partition (an empty partition has ``start == end``)."""
    partitions = set(first.start) | set(second.start)
    if first.end is not None:
        partitions |= set(first.end)
    if second.end is not None:
        partitions |= set(second.end)
    start = {p: max(first.start.get(p, 0), second.start.get(p, 0)) for p in sorted(partitions)}
    if first.end is None and second.end is None:
        return Span(start, None)
    ends = [span.end for span in (first, second) if span.end is not None]
    end = {p: max(start[p], min(e.get(p, 0) for e in ends)) for p in sorted(partitions)}
    return Span(start, end)


def position(signal: Signal) -> Position:
    return (signal.symbol, signal.venue, signal.timeframe, signal.rule, signal.ts_event.isoformat())


def _content(signal: Signal) -> tuple[Any, ...]:
    return (signal.side, signal.price, tuple(sorted(signal.indicators.items())))


@dataclass
class SignalDiff:
    """What ``runs diff`` reports: positions only in A, only in B, changed, and how many agree."""

    only_a: list[Signal] = field(default_factory=list)
    only_b: list[Signal] = field(default_factory=list)
    changed: list[tuple[Signal, Signal]] = field(default_factory=list)
    same: int = 0
    range: Span | None = None
    # Candle signals of one run whose window the other's input did not close (module docstring): not differences.
    unclosed_a: list[Signal] = field(default_factory=list)
    unclosed_b: list[Signal] = field(default_factory=list)

    @property
    def differences(self) -> int:
        return len(self.only_a) + len(self.only_b) + len(self.changed)

    def to_json(self) -> dict[str, Any]:
        def brief(signal: Signal) -> dict[str, Any]:
            return {"symbol": signal.symbol, "venue": signal.venue, "timeframe": signal.timeframe, "rule": signal.rule,
                    "side": signal.side, "price": signal.price, "ts_event": signal.ts_event.isoformat(),
                    "signal_id": signal.signal_id,
                    "tick": {"partition": signal.lineage.partition, "offset": signal.lineage.offset}}

        span = self.range
        return {
            "differences": self.differences, "same": self.same,
            "only_a": [brief(s) for s in self.only_a], "only_b": [brief(s) for s in self.only_b],
            "changed": [{"a": brief(a), "b": brief(b), "indicators_a": a.indicators, "indicators_b": b.indicators}
                        for a, b in self.changed],
            "unclosed_a": [brief(s) for s in self.unclosed_a], "unclosed_b": [brief(s) for s in self.unclosed_b],
            "range": None if span is None else {"start": {str(p): o for p, o in span.start.items()},
                                                "end": None if span.end is None
                                                else {str(p): o for p, o in span.end.items()}},
        }


def _index(signals: Iterable[Signal], span: Span) -> dict[Position, Signal]:
    found: dict[Position, Signal] = {}
    for signal in signals:
        if span.contains(signal.lineage.partition, signal.lineage.offset):
            # A position fires once per run; a replayed duplicate (same id) is the same signal.
            found.setdefault(position(signal), signal)
    return found


Closes = Callable[[Signal, Span], bool]
"""``closes(signal, span)``: whether the input of the run over ``span`` closed the window candle ``signal`` fired on."""


def closes_window(signal: Signal, tick: Tick, config: PipelineConfig) -> bool:
    """Whether ``tick``, a later record of the partition of candle ``signal``'s tick, closes its window.

    The signal's ``ts_event`` is its window's end. The window closes at a tick of its venue that the
    pipeline accepts (``config.accepts``: a rejected one moves no stream time) at or after the end +
    ``config.grace_ms``, or at its own instrument's tick of a UTC day that starts at or after the end.
    """
    if tick.venue != signal.venue or not config.accepts(tick):
        return False
    ts = to_us(tick.ts_event)
    end = to_us(signal.ts_event)
    return ts >= end + config.grace_ms * 1000 or (tick.symbol == signal.symbol and ts // DAY_US * DAY_US >= end)


def diff_signals(signals_a: Iterable[Signal], span_a: Span, signals_b: Iterable[Signal], span_b: Span,
                 closes: Closes | None = None) -> SignalDiff:
    """Compare two runs' signals over their common range (see the module docstring).

    Without ``closes`` every signal only one run has is a difference (ticks-only strategies need none).
    """
    span = common(span_a, span_b)
    a, b = _index(signals_a, span), _index(signals_b, span)
    result = SignalDiff(range=span)
    for where in sorted(set(a) | set(b)):
        left, right = a.get(where), b.get(where)
        if right is None:
            assert left is not None  # noqa: S101 - from the union of both keys
            if closes is not None and left.timeframe != TICK and not closes(left, span_b):
                result.unclosed_a.append(left)
            else:
                result.only_a.append(left)
        elif left is None:
            if closes is not None and right.timeframe != TICK and not closes(right, span_a):
                result.unclosed_b.append(right)
            else:
                result.only_b.append(right)
        elif _content(left) != _content(right):
            result.changed.append((left, right))
        else:
            result.same += 1
    return result


@dataclass(frozen=True)
class ScorecardPair:
    """One scorecard key with each run's card (None: that run has no outcome there)."""

    key: CardKey
    a: Card | None
    b: Card | None

    def to_json(self) -> dict[str, Any]:
        def card(value: Card | None) -> dict[str, Any] | None:
            if value is None:
                return None
            factor = value.profit_factor
            return {"outcomes": value.outcomes, "hit_rate": value.hit_rate, "mean_return": value.mean_return,
                    "median_return": value.median_return, "mean_gross": value.mean_gross,
                    "profit_factor": "inf" if factor is not None and math.isinf(factor) else factor,
                    "versions": list(value.versions)}

        return {**self.key._asdict(), "a": card(self.a), "b": card(self.b)}


def _cards(signals: Iterable[Signal], outcomes: Iterable[SignalOutcome], span: Span) -> dict[CardKey, Card]:
    signal_ticks = {signal.signal_id: signal.lineage for signal in signals}
    kept = Scorecards()
    for outcome in outcomes:
        tick = signal_ticks.get(outcome.signal_id)
        if (tick is not None and span.contains(tick.partition, tick.offset)
                and span.contains(outcome.lineage.partition, outcome.lineage.offset)):
            kept.add(outcome)
    return {card.key: card for card in kept.cards()}


def diff_scorecards(signals_a: Iterable[Signal], outcomes_a: Iterable[SignalOutcome], span_a: Span,
                    signals_b: Iterable[Signal], outcomes_b: Iterable[SignalOutcome],
                    span_b: Span) -> list[ScorecardPair]:
    """Both runs' scorecards over their common range, side by side, sorted by key (module docstring)."""
    span = common(span_a, span_b)
    a, b = _cards(signals_a, outcomes_a, span), _cards(signals_b, outcomes_b, span)
    return [ScorecardPair(key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b))]
