"""Gap detection on per-symbol increasing ids (exchange trade ids)."""

from __future__ import annotations

from processors.ingest.sources.base import SequenceGap


class GapTracker:
    """Remembers the highest id per symbol; a jump of more than one is a gap.

    An id at or below the highest seen (a reconnect snapshot, a redelivery) is not a
    gap; the service's duplicate guard handles it. The first id of a symbol sets the
    baseline. State survives reconnects on purpose: trades missed while disconnected
    are a real gap.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def observe(self, symbol: str, sequence: int) -> SequenceGap | None:
        last = self._last.get(symbol)
        if last is None or sequence > last:
            self._last[symbol] = sequence
        if last is not None and sequence > last + 1:
            return SequenceGap(symbol, last + 1, sequence)
        return None
