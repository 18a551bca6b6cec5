"""Pure core of the materializer: records in, planned view writes out. No I/O.

Called by :class:`processors.materialize.service.Materializer` (live) and by
:mod:`processors.materialize.rebuild` (replay) once per consumed batch: every record is
decoded strictly through its type's upcaster chain (:mod:`schemas.upcasters`: a record of an
earlier release is upgraded, one from a newer release and one that does not decode become a
:class:`DeadLetter` with a stable reason code), turned into view writes tagged with its log offset, and the writes of
one batch are coalesced — of many writes to one "latest value" slot only the one with the
highest offset is kept, because the compare-and-set in Redis would discard the others anyway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from pydantic import ValidationError

from processors.materialize.admission import ViewAdmission
from processors.materialize.documents import RecommendationSource
from processors.materialize.keys import ViewKeys
from schemas.events import (
    Candle,
    DailySummary,
    DeadLetter,
    Event,
    IndicatorSnapshot,
    Lineage,
    Signal,
    SignalOutcome,
    Tick,
    encode,
)
from schemas.instruments import format_instrument
from schemas.topics import TopicRegistry
from schemas.upcasters import CHAINS, UnsupportedSchemaVersionError, record_key

MAX_RAW_CHARS = 16_384
DEAD_LETTER_SOURCE = "materialize"


class Kind(Enum):
    TICK = "tick"
    CANDLE = "candle"
    INDICATORS = "indicators"
    SIGNAL = "signal"
    DAILY = "daily"
    OUTCOME = "outcome"


MODELS: dict[Kind, type[Event]] = {
    Kind.TICK: Tick,
    Kind.CANDLE: Candle,
    Kind.INDICATORS: IndicatorSnapshot,
    Kind.SIGNAL: Signal,
    Kind.DAILY: DailySummary,
    Kind.OUTCOME: SignalOutcome,
}


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One consumed Kafka record, decoupled from the Kafka client."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Route:
    kind: Kind
    label: str  # topic name without the namespace prefix: the metric label
    timeframe: str | None = None  # candle topics only

    @property
    def version(self) -> int:
        """The current ``schema_version`` of the route's events (older records are re-encoded)."""
        return CHAINS[MODELS[self.kind]].latest


@dataclass(frozen=True)
class InputTopics:
    """Which topic carries which kind of event, for one deployment's topic registry."""

    routes: dict[str, Route]

    @classmethod
    def from_registry(cls, registry: TopicRegistry) -> InputTopics:
        routes = {
            registry.ticks.name: Route(Kind.TICK, registry.ticks_base),
            registry.indicators.name: Route(Kind.INDICATORS, "indicators"),
            registry.signals.name: Route(Kind.SIGNAL, "signals"),
            registry.aggregates_daily.name: Route(Kind.DAILY, "aggregates.daily"),
            registry.signal_outcomes.name: Route(Kind.OUTCOME, "signals.outcomes"),
        }
        for timeframe in registry.candle_timeframes:
            routes[registry.candles(timeframe).name] = Route(Kind.CANDLE, f"candles.{timeframe}", timeframe)
        return cls(routes)

    @property
    def names(self) -> list[str]:
        return list(self.routes)


@dataclass(frozen=True)
class Caps:
    """How many entries the capped views keep, and when a recommendation decays."""

    candles: int = 1000
    indicator_history: int = 1000
    signals: int = 500
    recommendation_decay: timedelta = timedelta(minutes=15)
    outcomes: int = 2000  # per instrument, newest by signal time: what the API's scorecards sum up


@dataclass(slots=True)
class SlotWrite:
    """Set ``field = value`` in a hash unless its position hash already holds an offset ≥ ``offset``."""

    field: str
    offset: int
    value: bytes
    live: str | None  # the live update type when this write changes the view ("tick", …), None: not pushed


@dataclass(slots=True)
class CandleWrite:
    """Upsert one candle window (compare-and-set on its offset) and trim the index to ``cap``.

    ``final``: a closed candle. A forming one never replaces a final one of its window, a final one
    always replaces a forming one (:data:`processors.materialize.store.UPSERT_CAPPED`).
    """

    index_key: str
    data_key: str
    member: str
    score: int
    offset: int
    value: bytes
    cap: int
    live: str | None
    final: bool = True


@dataclass(slots=True)
class SeriesAdd:
    """One immutable event (member = its JSON) for a capped sorted set."""

    score: int
    member: bytes
    live: str | None


@dataclass
class SeriesGroup:
    """Everything a batch adds to one capped sorted set: written by one script call."""

    cap: int
    adds: list[SeriesAdd] = field(default_factory=list)


@dataclass
class ViewBatch:
    """Everything one consumed batch changes, coalesced and grouped by key; executed by ``ViewStore.apply``.

    ``slots`` maps a hash key to its fields (only the highest offset of each field is kept);
    ``series`` maps a sorted set key to the events added to it.
    """

    instruments: set[str] = field(default_factory=set)  # SYMBOL@venue of every event planned
    slots: dict[str, dict[str, SlotWrite]] = field(default_factory=dict)
    candles: dict[tuple[str, str], CandleWrite] = field(default_factory=dict)
    series: dict[str, SeriesGroup] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events_by_topic: Counter[str] = field(default_factory=Counter)
    records: int = 0

    @property
    def write_count(self) -> int:
        return (sum(len(fields) for fields in self.slots.values()) + len(self.candles)
                + sum(len(group.adds) for group in self.series.values()))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def live_update(kind: str, json_text: bytes) -> bytes:
    """Compact update for the live channel, built by concatenation (the event JSON is already valid JSON)."""
    return b'{"type":"' + kind.encode() + b'","data":' + json_text + b"}"


class BatchPlanner:
    """Builds one :class:`ViewBatch` from consumed records. Pure: the clock is injected for dead letters."""

    def __init__(self, keys: ViewKeys, topics: InputTopics, caps: Caps, now: Callable[[], datetime],
                 admission: ViewAdmission | None = None) -> None:
        self.keys = keys
        self.admission = admission  # None: every instrument is written (tests, benchmarks, backfill sinks)
        self.topics = topics
        self.caps = caps
        self.now = now
        self._indicator_keys: dict[tuple[str, str, str], tuple[str, str, str, str]] = {}
        self._handlers: dict[Kind, Callable[[ViewBatch, Any, int, Any], None]] = {
            Kind.TICK: self._tick, Kind.INDICATORS: self._indicators, Kind.CANDLE: self._candle,
            Kind.SIGNAL: self._signal, Kind.DAILY: self._daily, Kind.OUTCOME: self._outcome,
        }

    def plan(self, records: Iterable[InputRecord]) -> ViewBatch:
        """Decode every record and turn the good ones into coalesced view writes (the hot loop)."""
        batch = ViewBatch()
        routes = self.topics.routes
        counts = batch.events_by_topic
        handlers = self._handlers
        admission = self.admission
        for record in records:
            batch.records += 1
            route = routes.get(record.topic)
            decoded = self._decode(record, route)
            if route is None or isinstance(decoded, DeadLetter):
                batch.dead_letters.append(decoded)  # type: ignore[arg-type]
                continue
            event, version = decoded
            if admission is not None:
                symbol, venue = event.symbol, event.venue  # type: ignore[attr-defined]
                refused = admission.refusal(symbol, venue, format_instrument(symbol, venue))
                if refused is not None:
                    batch.dead_letters.append(self._dead(record, refused, admission.policy.describe(
                        refused, format_instrument(symbol, venue), admission.limit)))
                    continue
            counts[route.label] += 1
            # The record's own bytes are stored: they just passed strict validation, and the same log
            # position always holds the same bytes, so replays and rebuilds store identical members.
            # An upcast record is stored as its current-version JSON (the same for every replay too).
            text = record.value if version == route.version else encode(event)
            handlers[route.kind](batch, event, record.offset, text)  # type: ignore[arg-type]
        return batch

    # -- decoding ---------------------------------------------------------------------------------

    def decode(self, record: InputRecord) -> Event | DeadLetter:
        """The (current-version) event in ``record``, or a dead letter saying why not (never raises)."""
        decoded = self._decode(record, self.topics.routes.get(record.topic))
        return decoded if isinstance(decoded, DeadLetter) else decoded[0]

    def _decode(self, record: InputRecord, route: Route | None) -> tuple[Event, int] | DeadLetter:
        if route is None:
            return self._dead(record, "unknown_topic", f"topic {record.topic!r} is not an input of the materializer")
        if not record.value:
            return self._dead(record, "empty_value", "record has no value (tombstone or empty payload)")
        model = MODELS[route.kind]
        try:
            event, version = CHAINS[model].decode_versioned(record.value)
        except ValidationError as error:
            reason = "invalid_json" if any(e["type"] == "json_invalid" for e in error.errors()) else "schema_invalid"
            return self._dead(record, reason, f"not a valid {model.__name__}: {_short_errors(error)}")
        except UnsupportedSchemaVersionError as error:
            return self._dead(record, error.reason, str(error))
        expected = record_key(event, version)
        if record.key is None or record.key != expected:
            # Views compare offsets within one partition; that holds only when the key is the instrument
            # (the symbol, for a v1 record: v1 keyed by symbol).
            return self._dead(record, "key_mismatch",
                              f"record key {record.key!r} is not the event's key {expected!r}")
        if route.timeframe is not None and event.timeframe != route.timeframe:  # type: ignore[attr-defined]
            return self._dead(record, "timeframe_mismatch",
                              f"candle of timeframe {event.timeframe!r} on the {route.label} topic")  # type: ignore[attr-defined]
        return event, version

    def _dead(self, record: InputRecord, reason: str, detail: str) -> DeadLetter:
        raw = (record.value or b"").decode("utf-8", errors="backslashreplace")
        return DeadLetter(
            source=DEAD_LETTER_SOURCE, reason=reason, detail=detail[:2000], raw=raw[:MAX_RAW_CHARS],
            ts_init=self.now(), origin=Lineage(topic=record.topic, partition=record.partition, offset=record.offset),
        )

    # -- planning ---------------------------------------------------------------------------------

    @staticmethod
    def _slot(batch: ViewBatch, data_key: str, field_name: str, offset: int, value: bytes, live: str | None) -> None:
        fields = batch.slots.get(data_key)
        if fields is None:
            fields = batch.slots[data_key] = {}
        current = fields.get(field_name)
        if current is None or current.offset < offset:
            fields[field_name] = SlotWrite(field_name, offset, value, live)

    @staticmethod
    def _series(batch: ViewBatch, key: str, score: int, member: bytes, cap: int, live: str | None) -> None:
        group = batch.series.get(key)
        if group is None:
            group = batch.series[key] = SeriesGroup(cap)
        group.adds.append(SeriesAdd(score, member, live))

    def _tick(self, batch: ViewBatch, event: Tick, offset: int, text: bytes) -> None:
        instrument = format_instrument(event.symbol, event.venue)
        batch.instruments.add(instrument)
        self._slot(batch, self.keys.latest(instrument), "tick", offset, text, "tick")

    def _indicators(self, batch: ViewBatch, event: IndicatorSnapshot, offset: int, text: bytes) -> None:
        # The hottest path with ticks: its three keys are looked up once per instrument and timeframe.
        where = (event.symbol, event.venue, event.timeframe)
        keys = self._indicator_keys.get(where)
        if keys is None:
            instrument = format_instrument(event.symbol, event.venue)
            keys = self._indicator_keys[where] = (
                self.keys.latest(instrument), self.keys.latest_indicator_field(event.timeframe),
                self.keys.indicator_history(instrument, event.timeframe), instrument)
        batch.instruments.add(keys[3])
        self._slot(batch, keys[0], keys[1], offset, text, None)
        self._series(batch, keys[2], _ms(event.ts_event), text, self.caps.indicator_history, "indicators")

    def _candle(self, batch: ViewBatch, event: Candle, offset: int, text: bytes) -> None:
        keys = self.keys
        instrument = format_instrument(event.symbol, event.venue)
        batch.instruments.add(instrument)
        index = keys.candles(instrument, event.timeframe)
        opened = _ms(event.ts_open)
        member = str(opened)
        current = batch.candles.get((index, member))
        final = event.final
        if current is None or (final, offset) > (current.final, current.offset) and (final or not current.final):
            batch.candles[(index, member)] = CandleWrite(
                index, keys.candles_data(instrument, event.timeframe), member, opened, offset, text,
                self.caps.candles, "candle", final)

    def _signal(self, batch: ViewBatch, event: Signal, offset: int, text: bytes) -> None:
        keys = self.keys
        instrument = format_instrument(event.symbol, event.venue)
        batch.instruments.add(instrument)
        score = _ms(event.ts_event)
        self._series(batch, keys.signals(instrument), score, text, self.caps.signals, "signal")
        self._series(batch, keys.signals(instrument, event.rule), score, text, self.caps.signals, None)
        source = RecommendationSource(
            signal_id=event.signal_id, symbol=event.symbol, venue=event.venue, timeframe=event.timeframe, rule=event.rule,
            strategy_version=event.strategy_version, side=event.side, price=event.price, ts_event=event.ts_event,
            expires_at=_decays_at(event.ts_event, self.caps.recommendation_decay),
        ).model_dump_json().encode()
        rec_key = keys.recommendation(instrument)
        self._slot(batch, rec_key, keys.recommendation_field(None), offset, source, "recommendation")
        self._slot(batch, rec_key, keys.recommendation_field(event.timeframe), offset, source, None)
        self._slot(batch, rec_key, keys.recommendation_field(None, event.strategy), offset, source, None)
        self._slot(batch, rec_key, keys.recommendation_field(event.timeframe, event.strategy), offset, source, None)

    def _daily(self, batch: ViewBatch, event: DailySummary, offset: int, text: bytes) -> None:
        instrument = format_instrument(event.symbol, event.venue)
        batch.instruments.add(instrument)
        self._slot(batch, self.keys.daily(instrument), self.keys.daily_field(event.date.isoformat()), offset,
                   text, "daily")


    def _outcome(self, batch: ViewBatch, event: SignalOutcome, offset: int, text: bytes) -> None:
        # Immutable facts (one per signal and horizon, deterministic id): a capped series like the signals,
        # ordered by the signal's time so the cap keeps the newest signals' outcomes. No live push.
        instrument = format_instrument(event.symbol, event.venue)
        batch.instruments.add(instrument)
        self._series(batch, self.keys.outcomes(instrument), _ms(event.signal_ts), text, self.caps.outcomes, None)


def _decays_at(ts_event: datetime, decay: timedelta) -> datetime:
    """``ts_event + decay``, or the last representable moment for a signal dated at the calendar's end
    (a valid Signal on 9999-12-31 made the sum overflow and the whole batch fail, again after every restart)."""
    try:
        return ts_event + decay
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def _short_errors(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(part) for part in item["loc"]) or "value"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
