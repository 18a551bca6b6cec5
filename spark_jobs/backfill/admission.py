"""The instrument limit in the backfill: which instruments each partition of ``ticks`` refuses, as the processor does.

The processor's rule (:mod:`processors.core.admission`, docs/stream.md "Instrument limit"): an
instrument not on ``INSTRUMENT_ALLOW`` (when it is set) is refused on every tick; otherwise each
partition admits the first ``per_partition`` distinct instruments in its log order — the order of
each instrument's first tick that decodes — and refuses every later new one, on all its ticks.
The processor counts from the first record it consumed; the backfill decides from the first record
the log still holds, i.e. exactly as ``stockstream replay --from 0`` (a fresh group) decides.

The driver (:mod:`spark_jobs.backfill.job`) finds each (partition, instrument)'s first decodable
tick with Spark and :func:`decide` turns them into an :class:`Admission`; the per-group step
(:mod:`spark_jobs.backfill.runner`) asks it for every tick and dead-letters the refused ones with
the processor's reason codes (``instrument_limit`` / ``instrument_not_allowed``) and detail. Pure:
no Spark here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from processors.core.admission import INSTRUMENT_NOT_ALLOWED, InstrumentPolicy


@dataclass(frozen=True)
class FirstTick:
    """An instrument's first decodable tick in one partition of the log."""

    partition: int
    offset: int
    symbol: str
    venue: str

    @property
    def instrument(self) -> str:
        return f"{self.symbol}@{self.venue}"


@dataclass(frozen=True)
class Admission:
    """Per (partition, instrument) the refusal reason; pickled into every Spark task (small: refusals only)."""

    policy: InstrumentPolicy
    refused: dict[tuple[int, str], str] = field(default_factory=dict)

    def refusal(self, partition: int, symbol: str, venue: str) -> tuple[str, str] | None:
        """(reason, detail) of the dead letter for a tick of this instrument in ``partition``; None: admitted."""
        policy = self.policy
        if policy.allow and not policy.allows(symbol, venue):  # on every tick, as the processor checks it first
            return INSTRUMENT_NOT_ALLOWED, policy.describe(INSTRUMENT_NOT_ALLOWED, f"{symbol}@{venue}",
                                                           policy.per_partition)
        reason = self.refused.get((partition, f"{symbol}@{venue}"))
        if reason is None:
            return None
        return reason, policy.describe(reason, f"{symbol}@{venue}", policy.per_partition)

    def instruments(self) -> dict[str, list[str]]:
        """Reason → the instruments refused in some partition (``SYMBOL@venue``; one admitted elsewhere included)."""
        by_reason: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
        for (partition, instrument), reason in self.refused.items():
            by_reason[reason][instrument].add(partition)
        return {reason: sorted(found) for reason, found in sorted(by_reason.items())}


def decide(policy: InstrumentPolicy, firsts: Iterable[FirstTick]) -> Admission:
    """The processor's decision for every instrument of the log (see the module docstring)."""
    by_partition: dict[int, list[FirstTick]] = defaultdict(list)
    for first in firsts:
        by_partition[first.partition].append(first)
    refused: dict[tuple[int, str], str] = {}
    limit = policy.per_partition
    for partition, found in by_partition.items():
        admitted = 0
        for first in sorted(found, key=lambda item: item.offset):
            reason = policy.refusal(first.symbol, first.venue, admitted, limit)
            if reason is None:
                admitted += 1
            else:
                refused[(partition, first.instrument)] = reason
    return Admission(policy, refused)

