"""The Parquet history: reading what ``stockstream backfill`` wrote, as the events the views hold.

Layout (docs/spark.md, ``spark_jobs/backfill/rows.py``): ``<root>/<kind>/symbol=<SYMBOL>/date=<YYYY-MM-DD>/
*.parquet`` for the kinds ``candles``, ``indicators`` and ``signals``; each row has its ``venue``,
``timeframe``, times, the causing record's ``partition``/``offset`` and the indicator values as
``i_<name>`` columns. A candle's ``date`` is its window open's, a snapshot's or signal's its event
time's. Called by :class:`stockstream.history.pages.Pager` for the newest ``limit`` entries before
a key, one date partition at a time from the newest (a page never reads more days than it needs).

Rows become the same pydantic events the views hold (lineage topic: the deployment's ticks topic);
a row that does not make a valid event is skipped and counted, like a corrupt view document.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from schemas.events import Candle, IndicatorSnapshot, Lineage, Signal
from schemas.instruments import Instrument
from stockstream.history.cursor import Key, candle_key, micros, signal_key, snapshot_key

log = logging.getLogger(__name__)
Model = TypeVar("Model", Candle, IndicatorSnapshot, Signal)
INDICATOR_PREFIX = "i_"


def _micros_delta(value: int) -> timedelta:
    # A bound beyond the calendar (the "no upper bound" key) is the calendar's end.
    return timedelta(microseconds=min(value, 253_402_300_799_000_000))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class HistoryStore:
    """Reads one backfill output folder (``root``); ``None`` or a missing folder is an empty history."""

    def __init__(self, root: Path | None, ticks_topic: str = "ticks") -> None:
        self.root = root
        self.ticks_topic = ticks_topic
        self.skipped = 0

    def available(self) -> bool:
        return self.root is not None and self.root.is_dir()

    def _dates(self, kind: str, symbol: str) -> list[tuple[date, Path]]:
        """The date partitions of one symbol's dataset, newest first."""
        if self.root is None:
            return []
        folder = self.root / kind / f"symbol={symbol}"
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        found = []
        for name in names:
            if name.startswith("date="):
                try:
                    found.append((date.fromisoformat(name.removeprefix("date=")), folder / name))
                except ValueError:
                    continue
        return sorted(found, reverse=True)

    def _newest(self, kind: str, instrument: Instrument, low: datetime | None, before: Key, limit: int,
                equal: dict[str, str], time_column: str, build: Callable[[dict[str, Any]], Model],
                key_of: Callable[[Model], Key]) -> list[Model]:
        """The newest ``limit`` entries with key < ``before`` (and time ≥ ``low``), oldest first.

        ``equal`` (column → value) and the time bounds are pushed down to pyarrow, so only the rows
        of the page's instrument, timeframe and range become Python objects.
        """
        import pyarrow as pa
        import pyarrow.dataset as ds

        before_time = datetime(1970, 1, 1, tzinfo=UTC) + _micros_delta(before[0])
        low_key = micros(low) if low is not None else None
        found: list[Model] = []
        for day, folder in self._dates(kind, instrument.symbol):
            if day > before_time.date():
                continue
            if low is not None and day < low.date():
                break
            dataset = ds.dataset(folder, format="parquet")
            if "venue" not in dataset.schema.names or time_column not in dataset.schema.names:
                continue
            kind_of_time = dataset.schema.field(time_column).type

            def scalar(moment: datetime, kind_of_time: Any = kind_of_time) -> Any:
                plain = moment if getattr(kind_of_time, "tz", None) else moment.astimezone(UTC).replace(tzinfo=None)
                return pa.scalar(plain, type=kind_of_time)

            expression = ds.field("venue") == instrument.venue
            for column, value in equal.items():
                expression &= ds.field(column) == value
            # ≤ the bound's time (ties at the same microsecond are split by the rest of the key below)
            expression &= ds.field(time_column) <= scalar(before_time)
            if low is not None:
                expression &= ds.field(time_column) >= scalar(low)
            for row in dataset.to_table(filter=expression).to_pylist():
                try:
                    entry = build(row)
                except (ValidationError, KeyError, TypeError, ValueError) as error:
                    self.skipped += 1
                    log.warning("skipping a %s row of the history that is not a valid event: %s", kind, error)
                    continue
                key = key_of(entry)
                if key < before and (low_key is None or key[0] >= low_key):
                    found.append(entry)
            if len(found) >= limit:
                break  # every older day holds older entries only
        found.sort(key=key_of)
        return found[-limit:]

    def _lineage(self, row: dict[str, Any]) -> Lineage:
        return Lineage(topic=self.ticks_topic, partition=int(row["partition"]), offset=int(row["offset"]))

    @staticmethod
    def _values(row: dict[str, Any], keep_none: bool) -> dict[str, float | None]:
        return {name.removeprefix(INDICATOR_PREFIX): value for name, value in row.items()
                if name.startswith(INDICATOR_PREFIX) and (keep_none or value is not None)}

    def candles(self, instrument: Instrument, timeframe: str, low: datetime | None, before: Key,
                limit: int) -> list[Candle]:
        def build(row: dict[str, Any]) -> Candle:
            return Candle(symbol=instrument.symbol, venue=instrument.venue, timeframe=timeframe,
                          ts_open=_aware(row["ts_open"]), ts_close=_aware(row["ts_close"]), open=row["open"],
                          high=row["high"], low=row["low"], close=row["close"], volume=row["volume"],
                          trade_count=row["trade_count"], final=True, ts_event=_aware(row["ts_event"]),
                          ts_init=_aware(row["ts_init"]), lineage=self._lineage(row))

        return self._newest("candles", instrument, low, before, limit, {"timeframe": timeframe}, "ts_open", build,
                            candle_key)

    def indicators(self, instrument: Instrument, timeframe: str, low: datetime | None, before: Key,
                   limit: int) -> list[IndicatorSnapshot]:
        def build(row: dict[str, Any]) -> IndicatorSnapshot:
            return IndicatorSnapshot(symbol=instrument.symbol, venue=instrument.venue, timeframe=timeframe,
                                     price=row["price"], values=self._values(row, keep_none=True),
                                     ts_event=_aware(row["ts_event"]), ts_init=_aware(row["ts_init"]),
                                     lineage=self._lineage(row))

        return self._newest("indicators", instrument, low, before, limit, {"timeframe": timeframe}, "ts_event",
                            build, snapshot_key)

    def signals(self, instrument: Instrument, rule: str | None, side: str | None, low: datetime | None,
                before: Key, limit: int) -> list[Signal]:
        equal = {column: value for column, value in (("rule", rule), ("side", side)) if value is not None}

        def build(row: dict[str, Any]) -> Signal:
            return Signal(signal_id=row["signal_id"], symbol=instrument.symbol, venue=instrument.venue,
                          timeframe=row["timeframe"], rule=row["rule"], side=row["side"], price=row["price"],
                          indicators=self._values(row, keep_none=False), ts_event=_aware(row["ts_event"]),
                          ts_init=_aware(row["ts_init"]), lineage=self._lineage(row))

        return self._newest("signals", instrument, low, before, limit, equal, "ts_event", build, signal_key)
