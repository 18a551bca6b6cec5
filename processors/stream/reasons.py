"""Stable reason codes of the processor's dead letters (``DeadLetter.reason``, the ``reason`` label).

The set is closed: a code is part of the contract (DLQ consumers, dashboards, alerts), so a
new one is added here and in docs/stream.md, never built from free text. ``late``,
``price_out_of_range``, ``volume_out_of_range`` and ``time_out_of_range`` come from the core's step.
"""

from __future__ import annotations

from processors.core.admission import INSTRUMENT_LIMIT, INSTRUMENT_NOT_ALLOWED
from processors.core.pipeline import LATE, PRICE_OUT_OF_RANGE, TIME_OUT_OF_RANGE, VOLUME_OUT_OF_RANGE
from schemas.upcasters import SCHEMA_VERSION_UNSUPPORTED

VALUE_MISSING = "value_missing"  # a record without a value (tombstone)
ENCODING_INVALID = "encoding_invalid"  # the value is not UTF-8
MALFORMED_JSON = "malformed_json"  # not JSON at all
TICK_INVALID = "tick_invalid"  # JSON, but not a valid Tick (missing/extra/bad fields)
KEY_MISSING = "key_missing"  # a Tick without a record key (the key routes it to its instrument's state)
KEY_MISMATCH = "key_mismatch"  # the record key is not the tick's instrument (SYMBOL@venue; the symbol for v1)
# SCHEMA_VERSION_UNSUPPORTED: a tick written by a newer release (schemas/upcasters.py)
TIMESTAMP_IN_FUTURE = "timestamp_in_future"  # event time beyond the record's Kafka timestamp + the bound
# INSTRUMENT_NOT_ALLOWED, INSTRUMENT_LIMIT: a new instrument refused (processors/core/admission.py)
PROCESSING_FAILED = "processing_failed"  # the step raised (a bug); the tick is set aside, not lost

ALL_REASONS: frozenset[str] = frozenset({
    VALUE_MISSING, ENCODING_INVALID, MALFORMED_JSON, TICK_INVALID, KEY_MISSING, KEY_MISMATCH, SCHEMA_VERSION_UNSUPPORTED,
    TIMESTAMP_IN_FUTURE, INSTRUMENT_NOT_ALLOWED, INSTRUMENT_LIMIT,
    PROCESSING_FAILED, LATE, PRICE_OUT_OF_RANGE, VOLUME_OUT_OF_RANGE, TIME_OUT_OF_RANGE,
})
