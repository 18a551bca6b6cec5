"""Value checks shared by every source: amounts, timestamps, symbols, and the one Tick builder.

Each source's wire model checks the *shape* of its messages; the functions here
check the *values* and raise :class:`~processors.ingest.reasons.RecordRejected` with a
stable reason code. Money arrives as strings (or, for Kraken, JSON numbers) and is
converted to float exactly once, here, after a strict textual check: ``"10347.92"``
passes; ``"NaN"``, ``"inf"``, ``""``, ``"1_000"``, ``"0x10"``, booleans and negatives do not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from processors.ingest import reasons
from processors.ingest.reasons import RecordRejected
from schemas.events import Tick
from schemas.instruments import COMPOSITE_VENUE, InvalidInstrumentError, check_venue
from schemas.symbols import InvalidSymbolError, normalize_symbol

_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_EPOCH = re.compile(r"^\d+(?:\.\d+)?$")

AmountField = Literal["price", "volume", "bid", "ask"]


def parse_amount(value: object, field: AmountField, *, required: bool) -> float | None:
    """A finite number from a decimal string or a JSON number; ``None`` when absent and optional.

    Prices, bids and asks must be > 0; volumes >= 0. Absent means ``None`` or ``""``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RecordRejected(reasons.amount_reason(field, "missing"), f"{field} is missing or empty")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordRejected(
            reasons.amount_reason(field, "not_number"), f"{field} must be a number, got {type(value).__name__}"
        )
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _NON_FINITE:
            raise RecordRejected(reasons.amount_reason(field, "not_finite"), f"{field} is {text!r}")
        if not _DECIMAL.match(text):
            raise RecordRejected(
                reasons.amount_reason(field, "not_number"), f"{field} {_clip(text)!r} is not a decimal number"
            )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise RecordRejected(reasons.amount_reason(field, "not_finite"), f"{field} is not finite")
    if field == "volume":
        if number < 0:
            raise RecordRejected(reasons.amount_reason(field, "negative"), f"volume {number} is negative")
    elif number <= 0:
        raise RecordRejected(reasons.amount_reason(field, "not_positive"), f"{field} {number} is not > 0")
    return number


def require_amount(value: object, field: AmountField) -> float:
    """:func:`parse_amount` for a required field (never ``None``)."""
    number = parse_amount(value, field, required=True)
    if number is None:  # parse_amount raises first; this keeps the type exact
        raise RecordRejected(reasons.amount_reason(field, "missing"), f"{field} is missing")
    return number


def parse_venue(value: object, default: str) -> str:
    """A file record's venue: ``default`` when absent or blank, else the lower-cased name (``venue_invalid`` if bad)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if not isinstance(value, str):
        raise RecordRejected(reasons.VENUE_INVALID, f"venue must be text, got {type(value).__name__}")
    venue = value.strip().lower()
    try:
        check_venue(venue)
    except InvalidInstrumentError as error:
        raise RecordRejected(reasons.VENUE_INVALID, str(error)[:200]) from None
    if venue == COMPOSITE_VENUE:
        raise RecordRejected(reasons.VENUE_INVALID, f"venue {COMPOSITE_VENUE!r} is reserved for the composite index")
    return venue


def parse_symbol(value: object, allowed: frozenset[str] | None = None) -> str:
    """The canonical ``BTC-USD`` symbol; with ``allowed``, only a subscribed/configured one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordRejected(reasons.SYMBOL_MISSING, "symbol is missing or empty")
    try:
        symbol = normalize_symbol(value)
    except InvalidSymbolError as error:
        raise RecordRejected(reasons.SYMBOL_INVALID, str(error)) from None
    if allowed is not None and symbol not in allowed:
        raise RecordRejected(
            reasons.SYMBOL_UNEXPECTED, f"symbol {symbol} is not one of {', '.join(sorted(allowed))}"
        )
    return symbol


def parse_iso_timestamp(value: object, *, naive_as_utc: bool = False) -> datetime:
    """An ISO 8601 / RFC 3339 timestamp (``2022-10-19T23:28:22.061769Z``) as an aware UTC datetime.

    A naive timestamp is rejected unless ``naive_as_utc`` (the file format's documented rule).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordRejected(reasons.TIMESTAMP_MISSING, "timestamp is missing or empty")
    if not isinstance(value, str):
        raise RecordRejected(reasons.TIMESTAMP_INVALID, f"timestamp must be a string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordRejected(
            reasons.TIMESTAMP_INVALID, f"timestamp {_clip(value)!r} is not ISO 8601"
        ) from None
    if parsed.tzinfo is None:
        if not naive_as_utc:
            raise RecordRejected(reasons.TIMESTAMP_INVALID, f"timestamp {value!r} has no time zone")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00, 9999-12-31T23:59-05:00: no UTC datetime exists
        raise RecordRejected(reasons.TIMESTAMP_INVALID, f"timestamp {_clip(value)!r} is out of range") from None


def parse_epoch(value: object, *, unit: Literal["auto", "s", "ms"] = "auto") -> datetime:
    """Seconds or milliseconds since the Unix epoch (a JSON number or a digit string) as UTC.

    ``auto`` picks the unit by magnitude: below 1e11 seconds, below 1e14 milliseconds,
    below 1e17 microseconds, else nanoseconds (a 2024 date in each unit is 10/13/16/19 digits).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordRejected(reasons.TIMESTAMP_MISSING, "timestamp is missing or empty")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordRejected(reasons.TIMESTAMP_INVALID, f"timestamp must be a number, got {type(value).__name__}")
    if isinstance(value, str) and not _EPOCH.match(value.strip()):
        raise RecordRejected(reasons.TIMESTAMP_INVALID, f"timestamp {_clip(value)!r} is not an epoch number")
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond float range (10**400)
        number = math.inf
    if not math.isfinite(number) or number < 0:
        raise RecordRejected(reasons.TIMESTAMP_INVALID, f"timestamp {value!r} is not a valid epoch")
    if unit == "ms":
        seconds = number / 1_000
    elif unit == "s":
        seconds = number
    elif number < 1e11:
        seconds = number
    elif number < 1e14:
        seconds = number / 1e3
    elif number < 1e17:
        seconds = number / 1e6
    else:
        seconds = number / 1e9
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise RecordRejected(reasons.TIMESTAMP_INVALID, f"timestamp {value!r} is out of range") from None


def parse_file_timestamp(value: object) -> datetime:
    """The file format's timestamp: epoch number (auto unit) or ISO 8601 (naive = UTC)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_epoch(value)
    if isinstance(value, str) and _EPOCH.match(value.strip()):
        return parse_epoch(value)
    return parse_iso_timestamp(value, naive_as_utc=True)


@dataclass(frozen=True)
class TimeBounds:
    """What counts as an absurd event time: before ``earliest`` or beyond ``now + max_future``."""

    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future: timedelta = timedelta(minutes=5)

    def check(self, timestamp: datetime, now: datetime) -> datetime:
        if timestamp < self.earliest:
            raise RecordRejected(
                reasons.TIMESTAMP_TOO_OLD,
                f"timestamp {timestamp.isoformat()} is before {self.earliest.isoformat()}",
            )
        if timestamp > now + self.max_future:
            raise RecordRejected(
                reasons.TIMESTAMP_IN_FUTURE,
                f"timestamp {timestamp.isoformat()} is more than {self.max_future.total_seconds():.0f}s"
                f" after now ({now.isoformat()})",
            )
        return timestamp


def build_tick(
    *,
    source: str,
    venue: str,
    source_id: str,
    symbol: str,
    price: float,
    ts_event: datetime,
    ts_init: datetime,
    bounds: TimeBounds,
    volume: float | None = None,
    bid: float | None = None,
    ask: float | None = None,
) -> Tick:
    """The one place a domain ``Tick`` is created from already-parsed values.

    ``venue`` names the instrument's venue (``coinbase``, ``simulator``, ``file`` …; never the
    composite's ``index``). ``ts_event`` is bounds-checked against ``ts_init`` (the injected now). Raises
    :class:`RecordRejected` (``record_invalid``) if the schema still refuses the values.
    """
    bounds.check(ts_event, ts_init)
    if venue == COMPOSITE_VENUE:
        raise RecordRejected(reasons.VENUE_INVALID, f"venue {COMPOSITE_VENUE!r} is reserved for the composite index")
    try:
        return Tick(
            symbol=symbol, venue=venue, price=price, volume=volume, bid=bid, ask=ask,
            ts_event=ts_event, ts_init=ts_init, source=source, source_id=source_id,
        )
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise RecordRejected(reasons.RECORD_INVALID, f"{field}: {first['msg']}") from None


# Domain meaning of a wire field, to turn a wire model's shape error into a precise code.
_NUMERIC_DOMAINS = {"price", "volume", "bid", "ask"}


def rejection_from_validation_error(error: ValidationError, domains: Mapping[str, str]) -> RecordRejected:
    """Map the first error of a wire model to a reason code.

    ``domains`` maps a wire field name (``p``, ``"5. Exchange Rate"``) to its domain
    meaning (``price``, ``timestamp``, ``symbol``, ``trade_id``, …). Unknown fields fall
    back to ``field_invalid`` / ``field_unexpected`` so the code set stays closed.
    """
    first = error.errors()[0]
    wire = str(first["loc"][0]) if first["loc"] else ""
    kind = first["type"]
    domain = domains.get(wire, "field")
    where = f"{wire}: {first['msg']}" if wire else first["msg"]
    if kind == "extra_forbidden":
        return RecordRejected(reasons.FIELD_UNEXPECTED, f"unexpected field {_clip(wire)!r}")
    if kind == "model_type" or kind == "dict_type":
        return RecordRejected(reasons.NOT_AN_OBJECT, where)
    if domain in _NUMERIC_DOMAINS:
        problem = "missing" if kind == "missing" else "not_number"
        return RecordRejected(reasons.amount_reason(domain, problem), where)
    if domain in ("symbol", "timestamp", "trade_id"):
        suffix = "missing" if kind == "missing" else "invalid"
        return RecordRejected(f"{domain}_{suffix}", where)
    return RecordRejected(reasons.FIELD_INVALID, where)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
