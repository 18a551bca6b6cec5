"""A raw record of the ``ticks`` topic → a :class:`Tick`, or a :class:`DeadLetter` saying why not.

Called by :class:`processors.stream.handler.TickHandler` for every record; pure (no Kafka,
no clock: the dead letter's ``ts_init`` is the record's own timestamp so a replay of the
same log yields the same dead letters). Never raises on any input.

Records are decoded through the tick's upcaster chain (:mod:`schemas.upcasters`): a v1 tick
of an earlier release (keyed by its symbol) becomes a v2 tick of venue = its source; a record
from a newer release is dead-lettered as ``schema_version_unsupported``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pydantic import ValidationError

from processors.stream import reasons
from schemas.events import DeadLetter, Lineage, Tick
from schemas.upcasters import TICK_CHAIN, UnsupportedSchemaVersionError, record_key

UNKNOWN_SOURCE = "unknown"
_DETAIL_MAX = 500
# The current version's validator, called directly (~0.3 µs of ~2.5 per tick less than
# TICK_CHAIN.decode): the hot path; anything it refuses goes through the chain.
_validate_tick_json = Tick.__pydantic_validator__.validate_json
_decode_versioned = TICK_CHAIN.decode_versioned
_LATEST = TICK_CHAIN.latest


def raw_text(value: bytes | None) -> str:
    """The payload as text for ``DeadLetter.raw``; undecodable bytes are backslash-escaped."""
    if value is None:
        return ""
    return value.decode("utf-8", "backslashreplace")


def _source_of(value: bytes) -> str:
    """The ``source`` field of a JSON object payload when it is a usable string, else ``unknown``."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return UNKNOWN_SOURCE
    source = parsed.get("source") if isinstance(parsed, dict) else None
    if isinstance(source, str) and 0 < len(source) <= 64:
        return source
    return UNKNOWN_SOURCE


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or "value"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)[:_DETAIL_MAX]


def record_time(timestamp_ms: int) -> datetime:
    """A Kafka record timestamp (ms) as an aware UTC datetime."""
    return datetime.fromtimestamp(max(timestamp_ms, 0) / 1000, tz=UTC)


#: How far a tick's event time may lie beyond its record's Kafka timestamp. Ingest refuses event
#: times more than ``INGEST_MAX_FUTURE_SECONDS`` (300 s) ahead of its clock when it writes the record;
#: this bound is wider so that no tick ingest accepted is refused here.
MAX_FUTURE_S = 900.0


def decode_tick(value: bytes | None, key: bytes | None, timestamp_ms: int,
                lineage: Lineage, max_future_s: float = MAX_FUTURE_S) -> Tick | DeadLetter:
    """Parse one ``ticks`` record; a dead letter (with ``origin`` = ``lineage``) when it is unusable.

    A usable record is a ``Tick`` of any known version whose record key is exactly the key its
    release gave it: the instrument ``SYMBOL@venue`` (v2), the symbol (v1). The key decides the
    partition, so a mismatch would put the tick beside another instrument's ticks. Its event time
    may not lie more than ``max_future_s`` beyond the record's Kafka timestamp
    (``timestamp_in_future``): one tick dated in year 9999 would otherwise make every later tick of
    its instrument ``late`` forever. The bound compares two facts of the log, never the wall clock,
    so a replay or a backfill decides exactly as the live run did.
    """
    if value is None:
        return _dead(value, timestamp_ms, lineage, reasons.VALUE_MISSING, "the record has no value")
    try:
        tick: Tick = _validate_tick_json(value)
    except ValidationError:
        try:
            tick, version = _decode_versioned(value)
        except ValidationError as error:
            return _invalid(value, timestamp_ms, lineage, error)
        except UnsupportedSchemaVersionError as error:
            return _dead(value, timestamp_ms, lineage, reasons.SCHEMA_VERSION_UNSUPPORTED, str(error)[:_DETAIL_MAX],
                         _source_of(value))
    else:
        version = _LATEST
    if timestamp_ms > 0 and tick.ts_event.timestamp() * 1000.0 - timestamp_ms > max_future_s * 1000.0:
        return _dead(value, timestamp_ms, lineage, reasons.TIMESTAMP_IN_FUTURE,
                     f"event time {tick.ts_event.isoformat()} is more than {max_future_s:.0f} s after the record's "
                     f"timestamp {record_time(timestamp_ms).isoformat()}", tick.source)
    if version == _LATEST and key is not None and key == f"{tick.symbol}@{tick.venue}".encode():
        return tick
    return _keyed(tick, record_key(tick, version), value, key, timestamp_ms, lineage)


def _keyed(tick: Tick, expected: bytes | None, value: bytes, key: bytes | None, timestamp_ms: int,
           lineage: Lineage) -> Tick | DeadLetter:
    if key is not None and key == expected:
        return tick
    if key is None:
        return _dead(value, timestamp_ms, lineage, reasons.KEY_MISSING,
                     f"tick of {tick.symbol}@{tick.venue} has no record key", tick.source)
    shown = key.decode("utf-8", "backslashreplace")[:64]
    wanted = (expected or b"").decode()
    return _dead(value, timestamp_ms, lineage, reasons.KEY_MISMATCH,
                 f"record key {shown!r} is not the tick's instrument {wanted!r}", tick.source)


def _invalid(value: bytes, timestamp_ms: int, lineage: Lineage, error: ValidationError) -> DeadLetter:
    kinds = {item["type"] for item in error.errors(include_url=False, include_input=False)}
    if "json_invalid" in kinds:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as bad:
            return _dead(value, timestamp_ms, lineage, reasons.ENCODING_INVALID,
                         f"value is not UTF-8: {bad}"[:_DETAIL_MAX])
        return _dead(value, timestamp_ms, lineage, reasons.MALFORMED_JSON, _describe(error))
    return _dead(value, timestamp_ms, lineage, reasons.TICK_INVALID, _describe(error), _source_of(value))


def _dead(value: bytes | None, timestamp_ms: int, lineage: Lineage, reason: str, detail: str,
          source: str = UNKNOWN_SOURCE) -> DeadLetter:
    return DeadLetter(source=source, reason=reason, detail=detail, raw=raw_text(value),
                      ts_init=record_time(timestamp_ms), origin=lineage)
