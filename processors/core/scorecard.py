"""Scorecards: the signal outcomes of the log summed up per (strategy, timeframe, instrument, horizon).

Called by ``stockstream query scorecard`` (stockstream/commands/scorecard.py) with the
:class:`~schemas.events.SignalOutcome` events of ``signals.outcomes``, in any order. Pure: no I/O.

Definition (docs/core.md, "Scorecards"), over the net returns r of a card's outcomes:

- ``outcomes`` (the count) — outcomes (each outcome id counted once: a record read twice changes nothing);
- ``hit_rate`` — the share with r > 0;
- ``mean_return``, ``median_return`` — of r (the median of an even count is the mean of the two
  middle values, as pandas computes it); ``mean_gross`` — the mean before the fee;
- ``profit_factor`` — Σ r over r > 0 divided by |Σ r over r < 0|; None when no outcome lost
  (infinite when the losses are too small to divide by).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import NamedTuple

from schemas.events import SignalOutcome


class CardKey(NamedTuple):
    strategy: str
    timeframe: str
    symbol: str
    venue: str
    horizon: str


class Card(NamedTuple):
    """One scorecard row."""

    key: CardKey
    versions: tuple[str, ...]  # the strategy versions its outcomes came from ("-" for a v2 signal's None)
    outcomes: int  # how many outcomes (the definition's count)
    hit_rate: float
    mean_return: float
    median_return: float
    mean_gross: float
    profit_factor: float | None


class Scorecards:
    """Accumulates outcomes; :meth:`cards` gives the rows, sorted by key."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._net: dict[CardKey, list[float]] = {}
        self._gross: dict[CardKey, list[float]] = {}
        self._versions: dict[CardKey, set[str]] = {}

    def add(self, outcome: SignalOutcome) -> None:
        if outcome.outcome_id in self._seen:
            return
        self._seen.add(outcome.outcome_id)
        key = CardKey(outcome.strategy, outcome.timeframe, outcome.symbol, outcome.venue, outcome.horizon)
        self._net.setdefault(key, []).append(outcome.return_net)
        self._gross.setdefault(key, []).append(outcome.return_gross)
        self._versions.setdefault(key, set()).add(outcome.strategy_version or "-")

    def extend(self, outcomes: Iterable[SignalOutcome]) -> Scorecards:
        for outcome in outcomes:
            self.add(outcome)
        return self

    def cards(self) -> list[Card]:
        rows = []
        for key in sorted(self._net):
            net = self._net[key]
            gains = sum(r for r in net if r > 0)
            losses = -sum(r for r in net if r < 0)
            rows.append(Card(
                key, tuple(sorted(self._versions[key])), len(net), sum(1 for r in net if r > 0) / len(net),
                statistics.fmean(net), statistics.median(net), statistics.fmean(self._gross[key]),
                gains / losses if losses > 0 else None,
            ))
        return rows
