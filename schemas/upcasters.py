"""Schema evolution of the log: one upcaster chain per event type, and the one way to decode a record.

The log is kept forever, so a consumer (processor, materializer, notifier, Spark backfill, replay,
``tail``) meets records written by every earlier release. Each event type has one
:class:`UpcasterChain`: ``steps[n - 1]`` turns a version-``n`` record (a JSON object as a ``dict``)
into a version-``n + 1`` record, so any version reaches the current one by running the chain from
where it starts. Consumers never call ``Model.model_validate_json``; they call the decoder of
the type (:func:`decode_tick`, :func:`decode_signal` … or :func:`decode` with the model):

- a record of the current version is validated directly (the hot path: one pydantic call, no
  dict in between);
- an older record is parsed, upcast step by step, and validated as the current version (a
  v1 ``Tick`` becomes ``venue`` = its ``source``);
- a record from the future (``schema_version`` above the chain's end) raises
  :class:`UnsupportedSchemaVersionError`, which every consumer turns into a dead letter with
  reason :data:`SCHEMA_VERSION_UNSUPPORTED`: an old consumer never guesses at a newer layout;
- anything else that does not validate raises pydantic's ``ValidationError`` as before.

Adding version 3 of an event later is: bump the model's ``schema_version`` in
:mod:`schemas.events`, write ``def signal_v2_to_v3(record) -> record`` here, append it to the
chain, and add its unit test (tests/unit/schemas/test_upcasters.py). Nothing else changes.

A step is a pure function over a plain ``dict``: it never validates (the final model does),
never mutates its input and fills only what the older version lacked, so that a record that was
already invalid stays invalid; it raises ``ValueError`` for a record its own version would have
refused for a field the step is about (a v1 tick carrying ``venue``), and the record is then
refused like any invalid record (the current version's ``ValidationError``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from pydantic import ValidationError

from schemas.events import (
    Candle,
    DailySummary,
    DeadLetter,
    Event,
    IndicatorSnapshot,
    Signal,
    SignalOutcome,
    Tick,
)
from schemas.instruments import UNKNOWN_VENUE, format_instrument, venue_from_source
from schemas.runs import Run

SCHEMA_VERSION_UNSUPPORTED = "schema_version_unsupported"
"""The dead-letter reason of a record whose ``schema_version`` is newer than this code knows."""

Record = dict[str, Any]
Step = Callable[[Record], Record]
EventT = TypeVar("EventT", bound=Event)


class UnsupportedSchemaVersionError(ValueError):
    """A record written by a newer release (``version`` > ``latest``); the message is safe to log."""

    reason = SCHEMA_VERSION_UNSUPPORTED

    def __init__(self, model: str, version: int, latest: int) -> None:
        super().__init__(f"{model} schema_version {version} is newer than this release reads (up to {latest})")
        self.model = model
        self.version = version
        self.latest = latest


class Decoded(NamedTuple, Generic[EventT]):
    """An event and the ``schema_version`` its record was written with (before upcasting)."""

    event: EventT
    written_version: int


def _version_of(model: type[Event]) -> int:
    default = model.model_fields["schema_version"].default
    if not isinstance(default, int):
        raise TypeError(f"{model.__name__}.schema_version has no int default")
    return default


@dataclass(frozen=True)
class UpcasterChain(Generic[EventT]):
    """The versions of one event type: ``steps[n - 1]`` upgrades a version-``n`` record to ``n + 1``."""

    model: type[EventT]
    steps: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        if self.latest != _version_of(self.model):
            raise TypeError(f"the {self.model.__name__} chain ends at version {self.latest},"
                            f" the model is version {_version_of(self.model)}")

    @property
    def latest(self) -> int:
        """The version every record is upcast to: the model's own ``schema_version``."""
        return len(self.steps) + 1

    def upcast(self, record: Record) -> Record:
        """``record`` (a JSON object of any known version) as a current-version record (a new dict).

        A record without ``schema_version`` is version 1 (version 1 had the field as a default).
        Raises :class:`UnsupportedSchemaVersionError` for a version above :attr:`latest`, and
        ``ValueError`` for a version that is not a positive integer.
        """
        version = record.get("schema_version", 1)
        if type(version) is not int or version < 1:
            raise ValueError(f"schema_version {version!r} is not a positive integer")
        if version > self.latest:
            raise UnsupportedSchemaVersionError(self.model.__name__, version, self.latest)
        for step in self.steps[version - 1:]:
            record = step(record)
        return record

    def decode_versioned(self, data: bytes | str) -> Decoded[EventT]:
        """The current-version event in ``data`` and the version it was written with.

        Raises ``ValidationError`` for a payload that is not a valid record of any version, and
        :class:`UnsupportedSchemaVersionError` for one from a newer release.
        """
        validate = self.model.__pydantic_validator__.validate_json
        try:
            return Decoded(validate(data), self.latest)
        except ValidationError as error:
            record = _json_object(data)
            if record is None:
                raise
            version = record.get("schema_version", 1)
            if type(version) is not int or version < 1 or version == self.latest:
                raise
            try:
                upgraded = self.upcast(record)  # raises UnsupportedSchemaVersionError for the future
            except UnsupportedSchemaVersionError:
                raise
            except ValueError:
                raise error from None  # a step refused it: invalid in its own version
            # Validated from JSON again, so an upcast record is held to exactly the rules of a
            # record written in the current version (strict floats, UTC datetimes …). ASCII
            # escapes keep a lone surrogate the escape it was in the record.
            return Decoded(validate(json.dumps(upgraded)), version)

    def decode(self, data: bytes | str) -> EventT:
        """The current-version event in ``data`` (see :meth:`decode_versioned`)."""
        return self.decode_versioned(data).event


def _json_object(data: bytes | str) -> Record | None:
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


# -- the steps ------------------------------------------------------------------------------------

def tick_v1_to_v2(record: Record) -> Record:
    """Version 2 added the instrument's venue: a v1 tick's venue is its ``source``."""
    if "venue" in record:
        raise ValueError("a version-1 tick has no venue field")
    upgraded = dict(record)
    source = record.get("source")
    if isinstance(source, str):
        upgraded["venue"] = venue_from_source(source)
    upgraded["schema_version"] = 2
    return upgraded


def derived_v1_to_v2(record: Record) -> Record:
    """Version 2 added ``venue`` to candles, snapshots, signals and daily summaries.

    Version 1 computed them over every feed of a symbol at once and did not record which, so an
    upcast v1 derived event belongs to the instrument ``SYMBOL@unknown`` (docs/schemas.md).
    """
    if "venue" in record:
        raise ValueError("a version-1 event has no venue field")
    upgraded = dict(record)
    upgraded["venue"] = UNKNOWN_VENUE
    upgraded["schema_version"] = 2
    return upgraded


def signal_v2_to_v3(record: Record) -> Record:
    """Version 3 added the strategy: a v2 signal came from one of the four fixed rules.

    ``strategy`` = its ``rule``; ``strategy_version`` and ``condition`` are None — the release that
    wrote it did not record its periods and thresholds, so its version cannot be recomputed.
    """
    if "strategy" in record or "strategy_version" in record or "condition" in record:
        raise ValueError("a version-2 signal has no strategy fields")
    return _v3_with(record, "rule", {"strategy": record.get("rule"), "strategy_version": None, "condition": None})


def candle_v2_to_v3(record: Record) -> Record:
    """Version 3 added ``final`` (forming candles): version 2 only ever wrote closed candles."""
    if "final" in record:
        raise ValueError("a version-2 candle has no final field")
    return _v3_with(record, "trade_count", {"final": True})


def _v3_with(record: Record, after: str, fields: Record) -> Record:
    """``record`` as version 3: ``fields`` inserted after ``after`` (version 3's field order; only cosmetic in
    JSON objects), at the end when ``after`` is absent."""
    upgraded: Record = {}
    for key, value in record.items():
        upgraded[key] = value
        if key == after:
            upgraded.update(fields)
    for key, value in fields.items():
        upgraded.setdefault(key, value)
    upgraded["schema_version"] = 3
    return upgraded


TICK_CHAIN = UpcasterChain(Tick, (tick_v1_to_v2,))
CANDLE_CHAIN = UpcasterChain(Candle, (derived_v1_to_v2, candle_v2_to_v3))
INDICATOR_SNAPSHOT_CHAIN = UpcasterChain(IndicatorSnapshot, (derived_v1_to_v2,))
SIGNAL_CHAIN = UpcasterChain(Signal, (derived_v1_to_v2, signal_v2_to_v3))
DAILY_SUMMARY_CHAIN = UpcasterChain(DailySummary, (derived_v1_to_v2,))
DEAD_LETTER_CHAIN = UpcasterChain(DeadLetter, ())  # still version 1
SIGNAL_OUTCOME_CHAIN = UpcasterChain(SignalOutcome, ())  # version 1
RUN_CHAIN = UpcasterChain(Run, ())  # version 1 (the runs topic, schemas/runs.py)

CHAINS: dict[type[Event], UpcasterChain[Any]] = {
    chain.model: chain
    for chain in (TICK_CHAIN, CANDLE_CHAIN, INDICATOR_SNAPSHOT_CHAIN, SIGNAL_CHAIN, DAILY_SUMMARY_CHAIN,
                  DEAD_LETTER_CHAIN, SIGNAL_OUTCOME_CHAIN, RUN_CHAIN)
}
"""The one chain of every event type of the log."""


def chain_of(model: type[EventT]) -> UpcasterChain[EventT]:
    """The upcaster chain of ``model``; ``KeyError`` for a model that is not an event of the log."""
    return CHAINS[model]


def decode(model: type[EventT], data: bytes | str) -> EventT:
    """``model``'s current-version event in ``data``, from a record of any version (see the module doc)."""
    return chain_of(model).decode(data)


def decode_versioned(model: type[EventT], data: bytes | str) -> Decoded[EventT]:
    """Like :func:`decode`, with the version the record was written in."""
    return chain_of(model).decode_versioned(data)


def decode_tick(data: bytes | str) -> Tick:
    return TICK_CHAIN.decode(data)


def decode_candle(data: bytes | str) -> Candle:
    return CANDLE_CHAIN.decode(data)


def decode_indicator_snapshot(data: bytes | str) -> IndicatorSnapshot:
    return INDICATOR_SNAPSHOT_CHAIN.decode(data)


def decode_signal(data: bytes | str) -> Signal:
    return SIGNAL_CHAIN.decode(data)


def decode_daily_summary(data: bytes | str) -> DailySummary:
    return DAILY_SUMMARY_CHAIN.decode(data)


def decode_dead_letter(data: bytes | str) -> DeadLetter:
    return DEAD_LETTER_CHAIN.decode(data)


def decode_signal_outcome(data: bytes | str) -> SignalOutcome:
    return SIGNAL_OUTCOME_CHAIN.decode(data)


def decode_run(data: bytes | str) -> Run:
    return RUN_CHAIN.decode(data)


def record_key(event: Event, written_version: int) -> bytes | None:
    """The Kafka key the release that wrote ``event`` gave its record (None: a type without one).

    Version 1 keyed per-symbol topics by the symbol; version 2 keys them by the instrument
    ``SYMBOL@venue``. Consumers that insist on key = content (the processor, the materializer)
    compare the record's key with this, so a v1 log still passes.
    """
    symbol = getattr(event, "symbol", None)
    venue = getattr(event, "venue", None)
    if not isinstance(symbol, str) or not isinstance(venue, str):
        return None
    if written_version == 1 and not isinstance(event, SignalOutcome):  # outcomes came with venues: keyed by instrument
        return symbol.encode()
    return format_instrument(symbol, venue).encode()
