"""Stable reason codes for rejected input (``DeadLetter.reason`` and the ``reason`` metric label).

The set is closed on purpose: a code is part of the contract (dashboards, alerts,
DLQ consumers), so a new one is added here and documented in docs/ingest.md, never
built from free text.
"""

from __future__ import annotations

# Framing of the record.
MALFORMED_JSON = "malformed_json"
MALFORMED_CSV = "malformed_csv"
CSV_HEADER_INVALID = "csv_header_invalid"
ENCODING_INVALID = "encoding_invalid"
LINE_TOO_LONG = "line_too_long"
NOT_AN_OBJECT = "not_an_object"
MESSAGE_UNKNOWN = "message_unknown"
RESPONSE_UNEXPECTED = "response_unexpected"
FIELD_UNEXPECTED = "field_unexpected"
FIELD_INVALID = "field_invalid"

# Identity of the record.
SYMBOL_MISSING = "symbol_missing"
SYMBOL_INVALID = "symbol_invalid"
SYMBOL_UNEXPECTED = "symbol_unexpected"
TRADE_ID_MISSING = "trade_id_missing"
TRADE_ID_INVALID = "trade_id_invalid"
VENUE_INVALID = "venue_invalid"  # a file record's venue column is no venue name (or the reserved ``index``)

# Time.
TIMESTAMP_MISSING = "timestamp_missing"
TIMESTAMP_INVALID = "timestamp_invalid"
TIMESTAMP_TOO_OLD = "timestamp_too_old"
TIMESTAMP_IN_FUTURE = "timestamp_in_future"

# Amounts: ``<field>_<problem>`` for field in price, volume, bid, ask.
AMOUNT_FIELDS = ("price", "volume", "bid", "ask")
AMOUNT_PROBLEMS = ("missing", "not_number", "not_finite", "not_positive", "negative")

RECORD_INVALID = "record_invalid"


def amount_reason(field: str, problem: str) -> str:
    """``price_not_finite`` and friends; raises for a field or problem outside the closed set."""
    if field not in AMOUNT_FIELDS or problem not in AMOUNT_PROBLEMS:
        raise ValueError(f"no reason code for {field}/{problem}")
    return f"{field}_{problem}"


ALL_REASONS: frozenset[str] = frozenset(
    {
        MALFORMED_JSON, MALFORMED_CSV, CSV_HEADER_INVALID, ENCODING_INVALID, LINE_TOO_LONG, NOT_AN_OBJECT,
        MESSAGE_UNKNOWN, RESPONSE_UNEXPECTED, FIELD_UNEXPECTED, FIELD_INVALID,
        SYMBOL_MISSING, SYMBOL_INVALID, SYMBOL_UNEXPECTED, TRADE_ID_MISSING, TRADE_ID_INVALID, VENUE_INVALID,
        TIMESTAMP_MISSING, TIMESTAMP_INVALID, TIMESTAMP_TOO_OLD, TIMESTAMP_IN_FUTURE, RECORD_INVALID,
    }
    | {f"{field}_{problem}" for field in AMOUNT_FIELDS for problem in AMOUNT_PROBLEMS}
)


class RecordRejected(Exception):  # noqa: N818 - a rejection is an outcome, not a bug
    """A record failed validation; ``reason`` is a stable code, ``detail`` the explanation.

    Raised by the parsing/validation functions and caught by each source, which turns it
    into a dead letter carrying the raw payload.
    """

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in ALL_REASONS:
            raise ValueError(f"unknown reason code {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
