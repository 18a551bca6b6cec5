"""Output topics for a :class:`~processors.stream.handler.TickHandler` run in-process (no Quix topics).

``Emission``s carry the topic object; the handler only reads its ``name``. Used by the tests that
drive the handler directly (the stream-records fuzz test, the instrument-limit tests).
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.stream.handler import OutputTopics


@dataclass(frozen=True)
class Named:
    name: str


OUTPUTS = OutputTopics(indicators=Named("indicators"), signals=Named("signals"), outcomes=Named("signals.outcomes"),
                       candles={"1m": Named("candles.1m")}, aggregates_daily=Named("aggregates.daily"),
                       dead_letters=Named("ticks.dlq"))
