"""Where a candle window or a UTC day stands in the log: the last tick folded into it.

The rule (docs/core.md, "Live candles and quiet feeds", determinism): everything a close emits — the
candle, the indicator snapshot and the signals of its timeframe (their ids included), the running or
final daily summary — carries the ``ts_init`` and ``lineage`` of the *last tick folded into* that
window or day (a summary also its ``ts_event``), never those of the record whose time happened to
close it. So a window closed by its instrument's own next tick, by another instrument's tick moving
the partition's stream time, or by the end of a finite input gives the same bytes, and live, replay,
batch and backfill agree. Kept in the pipeline state with the window or day it belongs to.
"""

from __future__ import annotations

from datetime import datetime

from processors.core.plain import StateFormatError, as_int, as_list
from processors.core.timeutil import from_us, to_us
from schemas.events import Lineage


class Origin:
    """The event time, creation time and log position of the last tick folded into a window or a day."""

    __slots__ = ("ts_event", "ts_init", "lineage")

    def __init__(self, ts_event: datetime, ts_init: datetime, lineage: Lineage) -> None:
        self.ts_event = ts_event
        self.ts_init = ts_init
        self.lineage = lineage

    def dump(self) -> list[int | str]:
        lineage = self.lineage
        return [to_us(self.ts_event), to_us(self.ts_init), lineage.topic, lineage.partition, lineage.offset]

    @classmethod
    def load(cls, plain: object) -> Origin:
        """Rebuild from :meth:`dump`; raises :class:`StateFormatError` for anything else."""
        ts_event, ts_init, topic, partition, offset = as_list(plain, 5, "origin")
        if type(topic) is not str:
            raise StateFormatError("origin: the topic must be a string")
        try:
            lineage = Lineage(topic=topic, partition=as_int(partition, "origin partition"),
                              offset=as_int(offset, "origin offset"))
            return cls(from_us(as_int(ts_event, "origin event time")), from_us(as_int(ts_init, "origin init time")),
                       lineage)
        except (OverflowError, ValueError) as error:
            if isinstance(error, StateFormatError):
                raise
            raise StateFormatError(f"origin: {error}") from None
