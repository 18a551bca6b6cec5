"""Which instruments the views may hold: ``INSTRUMENT_ALLOW`` and ``MAX_INSTRUMENTS`` for the materializer.

Used by :class:`processors.materialize.planner.BatchPlanner` for every decoded event. The
processor already refuses (deterministically, per partition of ``ticks``: docs/stream.md) every
instrument beyond its share of the limit, so its derived events never exceed
:attr:`~processors.core.admission.InstrumentPolicy.total` instruments; this is the materializer's
own bound for what reaches it directly — the raw ``ticks`` topic it also reads, or a record
written to a derived topic by anyone but the processor. Seeded with the instruments the views
already hold (the ``{p}instruments`` set), it admits new ones while fewer than ``total`` are
known, in consumption order. An event of a refused instrument is a ``views.dlq`` dead letter.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.core.admission import INSTRUMENT_NOT_ALLOWED, InstrumentPolicy


class ViewAdmission:
    """The admitted instruments (``SYMBOL@venue``) of one views prefix, in memory."""

    def __init__(self, policy: InstrumentPolicy, known: Iterable[str | bytes] = ()) -> None:
        self.policy = policy
        self.limit = policy.total
        self.admitted: set[str] = set()
        self.seed(known)

    def seed(self, known: Iterable[str | bytes]) -> None:
        """Add the instruments the views already hold (they stay admitted whatever the limit)."""
        self.admitted.update(item.decode() if isinstance(item, bytes) else item for item in known)

    def refusal(self, symbol: str, venue: str, instrument: str) -> str | None:
        """None when an event of ``instrument`` may be written (a new one is then counted), else the reason."""
        if instrument in self.admitted:
            if self.policy.allow and not self.policy.allows(symbol, venue):
                return INSTRUMENT_NOT_ALLOWED
            return None
        reason = self.policy.refusal(symbol, venue, len(self.admitted), self.limit)
        if reason is None:
            self.admitted.add(instrument)
        return reason
