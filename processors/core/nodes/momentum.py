"""Momentum nodes: rate of change (TA-Lib ``ROC``) and on-balance volume (TA-Lib ``OBV``), in TA-Lib's operation order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.core.nodes.averages import CLOSE, VOLUME
from processors.core.nodes.base import FLOAT, INT, Node, Source, Update, check_period


@dataclass(frozen=True, slots=True)
class Roc(Node):
    """Rate of change in percent: ``(x / x[n] − 1)·100`` (0 when x[n] is 0), TA-Lib's ``ROC``."""

    period: int
    source: Source = CLOSE

    def __post_init__(self) -> None:
        check_period("ROC", self.period)

    def key(self) -> str:
        return f"roc({self.period},{self.source.key()})"

    def inputs(self) -> tuple[Source, ...]:
        return (self.source,)

    def state_kinds(self) -> str:
        return INT + INT + FLOAT * self.period  # count, position, ring of the last n values

    def initial_state(self) -> list[Any]:
        return [0, 0] + [0.0] * self.period

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        (source,) = sources
        n = self.period
        count_at, position_at, ring = state, state + 1, state + 2

        def update(v: list[Any]) -> None:
            x = v[source]
            if x is None:
                v[out] = None
                return
            count = v[count_at] + 1
            v[count_at] = count
            position = v[position_at]
            slot = ring + position
            before = v[slot]  # the value n updates ago (once the ring is full)
            v[slot] = x
            v[position_at] = position + 1 if position + 1 < n else 0
            if count <= n:
                v[out] = None
            else:
                v[out] = ((x / before) - 1.0) * 100.0 if before != 0.0 else 0.0

        return update


@dataclass(frozen=True, slots=True)
class Obv(Node):
    """On-balance volume, TA-Lib's ``OBV``: starts at the first volume, then ± each volume as the price rises/falls."""

    def key(self) -> str:
        return "obv()"

    def inputs(self) -> tuple[Source, ...]:
        return (CLOSE, VOLUME)

    def state_kinds(self) -> str:
        return INT + FLOAT + FLOAT  # count, previous price, OBV

    def initial_state(self) -> list[Any]:
        return [0, 0.0, 0.0]

    def build(self, out: int, state: int, sources: tuple[int, ...]) -> Update:
        price_at, volume_at = sources
        count_at, previous_at, total_at = state, state + 1, state + 2

        def update(v: list[Any]) -> None:
            price = v[price_at]
            if v[count_at] == 0:
                v[count_at] = 1
                total = v[volume_at]
            else:
                total = v[total_at]
                previous = v[previous_at]
                if price > previous:
                    total += v[volume_at]
                elif price < previous:
                    total -= v[volume_at]
            v[previous_at] = price
            v[out] = v[total_at] = total

        return update
