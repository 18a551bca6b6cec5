"""Which instruments may grow state and views: an optional allow-list and a cardinality limit.

Pure (no store, no clock). Called by the processor's symbol states
(:mod:`processors.stream.states`) for an instrument that has no state yet, and by the
materializer's planner (:mod:`processors.materialize.planner`) for an instrument not yet in the
views. A refusal is a stable reason code; the caller dead-letters the record with it.

The rule of the processor (docs/stream.md, "Instrument limit"): each partition of ``ticks``
admits the first :attr:`InstrumentPolicy.per_partition` distinct allowed instruments in its log
order, and no other. The count lives in the partition's state store, written in the same
checkpoint as the states and the committed offsets, so a restart, a replay of the log into a run
and a rebalance decide exactly as the first run did. An instrument, once admitted, stays admitted.
"""

from __future__ import annotations

from dataclasses import dataclass

INSTRUMENT_NOT_ALLOWED = "instrument_not_allowed"
"""The instrument is not on ``INSTRUMENT_ALLOW`` (and that list is set)."""
INSTRUMENT_LIMIT = "instrument_limit"
"""The instrument is new and its partition already admitted its share of ``MAX_INSTRUMENTS``."""

DEFAULT_MAX_INSTRUMENTS = 10_000


@dataclass(frozen=True)
class InstrumentPolicy:
    """``MAX_INSTRUMENTS`` over ``partitions`` partitions of ``ticks``, and the allow-list.

    ``allow`` holds instruments (``SYMBOL@venue``: that instrument only) and bare symbols
    (``SYMBOL``: the symbol on every venue); empty = every instrument is allowed.
    """

    max_instruments: int = DEFAULT_MAX_INSTRUMENTS
    partitions: int = 1
    allow: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.max_instruments < 1 or self.partitions < 1:
            raise ValueError("max_instruments and partitions must be at least 1")

    @property
    def per_partition(self) -> int:
        """How many instruments one partition of ``ticks`` admits: its share of the limit, rounded up."""
        return -(-self.max_instruments // self.partitions)

    @property
    def total(self) -> int:
        """The most instruments the processor can admit in all (``per_partition`` × partitions)."""
        return self.per_partition * self.partitions

    def allows(self, symbol: str, venue: str) -> bool:
        """True when the allow-list is unset or names the instrument or its symbol."""
        allow = self.allow
        return not allow or symbol in allow or f"{symbol}@{venue}" in allow

    def refusal(self, symbol: str, venue: str, admitted: int, limit: int) -> str | None:
        """Why a *new* instrument is refused when ``admitted`` of ``limit`` places are taken; None: admit it."""
        if not self.allows(symbol, venue):
            return INSTRUMENT_NOT_ALLOWED
        if admitted >= limit:
            return INSTRUMENT_LIMIT
        return None

    def describe(self, reason: str, instrument: str, limit: int) -> str:
        """The dead letter's detail for a refusal: what happened and what to change."""
        if reason == INSTRUMENT_NOT_ALLOWED:
            return f"{instrument} is not on INSTRUMENT_ALLOW; add it (or its symbol) to process it"
        return (f"{instrument} is new and {limit} instruments are already admitted here (MAX_INSTRUMENTS="
                f"{self.max_instruments}); raise MAX_INSTRUMENTS and replay to process it")
