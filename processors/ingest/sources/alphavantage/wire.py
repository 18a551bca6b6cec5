"""Alpha Vantage wire models (its own field names) and their one conversion each to domain ticks.

``CURRENCY_EXCHANGE_RATE`` → one :class:`Tick` (``source_id = <symbol>@<last refreshed>``,
so polling an unchanged quote is a duplicate, not a new tick).
``DIGITAL_CURRENCY_DAILY`` → one tick per day at the day's close (``23:59:59 UTC``),
price = close, volume = the day's volume; both field-name generations are accepted:
``"4a. close (USD)"`` (older, with the market in the name) and ``"4. close"``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from processors.ingest import reasons
from processors.ingest.reasons import RecordRejected
from processors.ingest.sources.base import Accepted, Outcome, Rejected, raw_text
from processors.ingest.validation import (
    TimeBounds,
    build_tick,
    parse_amount,
    parse_symbol,
    rejection_from_validation_error,
    require_amount,
)

SOURCE = "alphavantage"
RATE_KEY = "Realtime Currency Exchange Rate"
DAILY_KEY = "Time Series (Digital Currency Daily)"


class ExchangeRateWire(BaseModel):
    """The object under ``"Realtime Currency Exchange Rate"`` (every value a string)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    from_code: str | None = Field(None, alias="1. From_Currency Code")
    to_code: str | None = Field(None, alias="3. To_Currency Code")
    exchange_rate: str | None = Field(None, alias="5. Exchange Rate")
    last_refreshed: str | None = Field(None, alias="6. Last Refreshed")
    time_zone: str | None = Field(None, alias="7. Time Zone")
    bid_price: str | None = Field(None, alias="8. Bid Price")
    ask_price: str | None = Field(None, alias="9. Ask Price")


_RATE_DOMAINS = {
    "1. From_Currency Code": "symbol", "3. To_Currency Code": "symbol", "5. Exchange Rate": "price",
    "6. Last Refreshed": "timestamp", "7. Time Zone": "timestamp", "8. Bid Price": "bid", "9. Ask Price": "ask",
}


def local_timestamp(text: str | None, zone: str | None) -> datetime:
    """``"2020-02-12 19:05:01"`` in the response's ``"7. Time Zone"`` (UTC when absent) as UTC."""
    if text is None or not text.strip():
        raise RecordRejected(reasons.TIMESTAMP_MISSING, "last refreshed time is missing")
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise RecordRejected(reasons.TIMESTAMP_INVALID, f"{text[:40]!r} is not a date-time") from None
    if parsed.tzinfo is None:
        try:
            parsed = parsed.replace(tzinfo=ZoneInfo(zone) if zone else UTC)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise RecordRejected(reasons.TIMESTAMP_INVALID, f"unknown time zone {str(zone)[:40]!r}") from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # a date at the edge of the calendar that has no UTC equivalent
        raise RecordRejected(reasons.TIMESTAMP_INVALID, f"{text[:40]!r} is out of range") from None


def rate_to_tick(wire: ExchangeRateWire, *, symbol: str, now: datetime, bounds: TimeBounds) -> Accepted:
    """The single conversion of an exchange-rate quote for ``symbol`` (``BTC-USD``) to a tick."""
    if not wire.from_code or not wire.to_code:
        raise RecordRejected(reasons.SYMBOL_MISSING, "currency codes are missing")
    quoted = parse_symbol(f"{wire.from_code}-{wire.to_code}", frozenset({symbol}))
    ts_event = local_timestamp(wire.last_refreshed, wire.time_zone)
    return Accepted(build_tick(
        source=SOURCE, venue=SOURCE, source_id=f"{quoted}@{ts_event.isoformat()}", symbol=quoted,
        price=require_amount(wire.exchange_rate, "price"),
        bid=parse_amount(wire.bid_price, "bid", required=False),
        ask=parse_amount(wire.ask_price, "ask", required=False),
        ts_event=ts_event, ts_init=now, bounds=bounds,
    ))


def parse_rate_body(body: dict[str, object], *, symbol: str, now: datetime, bounds: TimeBounds) -> Outcome:
    """A success body (errors were classified before) → accepted tick or rejection."""
    raw = raw_text(json.dumps(body))
    inner = body.get(RATE_KEY)
    if not isinstance(inner, dict):
        return Rejected(reasons.RESPONSE_UNEXPECTED, f"{symbol}: no {RATE_KEY!r} object in the response", raw)
    try:
        return rate_to_tick(ExchangeRateWire.model_validate(inner), symbol=symbol, now=now, bounds=bounds)
    except ValidationError as error:
        rejected = rejection_from_validation_error(error, _RATE_DOMAINS)
    except RecordRejected as error:
        rejected = error
    return Rejected(rejected.reason, f"{symbol}: {rejected.detail}", raw)


class DailyBarWire(BaseModel):
    """One day of ``DIGITAL_CURRENCY_DAILY`` after its keys are normalized to ``close``/``volume``."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    close: str | None = None
    volume: str | None = None


_FIELD = re.compile(r"^\d+[ab]?\. (?P<name>[a-z ]+?)(?: \((?P<market>[A-Z0-9]+)\))?$")


def normalize_daily_keys(day: dict[str, object], market: str) -> dict[str, object]:
    """Map both generations of field names to plain ones for ``market``.

    ``"4a. close (USD)"`` (old: market in the name, ``b`` variants in USD) and
    ``"4. close"`` (new) both become ``close``; a market-specific key wins.
    """
    plain: dict[str, object] = {}
    specific: dict[str, object] = {}
    for key, value in day.items():
        match = _FIELD.match(key)
        if match is None:
            continue
        name, key_market = match.group("name"), match.group("market")
        if key_market is None:
            plain.setdefault(name, value)
        elif key_market == market and name not in specific:
            specific[name] = value
    return {**plain, **specific}


def parse_daily_history(
    body: dict[str, object], *, symbol: str, now: datetime, bounds: TimeBounds
) -> list[Outcome]:
    """Every day of a history body, oldest first, as ticks at 23:59:59 UTC (or rejections)."""
    series = body.get(DAILY_KEY)
    if not isinstance(series, dict):
        return [Rejected(reasons.RESPONSE_UNEXPECTED, f"{symbol}: no {DAILY_KEY!r} in the response",
                         raw_text(json.dumps(body)))]
    market = symbol.split("-")[1]
    outcomes: list[Outcome] = []
    for day_text in sorted(series):
        day = series[day_text]
        raw = raw_text(json.dumps({day_text: day}))
        locator = f"{symbol} {day_text}"
        try:
            if not isinstance(day, dict):
                raise RecordRejected(reasons.NOT_AN_OBJECT, "a day must be an object")
            try:
                bar = DailyBarWire.model_validate(normalize_daily_keys(day, market))
            except ValidationError as error:
                raise rejection_from_validation_error(error, {"close": "price", "volume": "volume"}) from None
            try:
                date = datetime.strptime(day_text, "%Y-%m-%d").date()  # noqa: DTZ007 - a calendar date, made UTC below
            except ValueError:
                raise RecordRejected(reasons.TIMESTAMP_INVALID, f"{day_text!r} is not a date") from None
            outcomes.append(Accepted(build_tick(
                source=SOURCE, venue=SOURCE, source_id=f"{symbol}@daily:{date.isoformat()}", symbol=symbol,
                price=require_amount(bar.close, "price"), volume=parse_amount(bar.volume, "volume", required=False),
                ts_event=datetime.combine(date, time(23, 59, 59), tzinfo=UTC), ts_init=now, bounds=bounds,
            )))
        except RecordRejected as rejected:
            outcomes.append(Rejected(rejected.reason, f"{locator}: {rejected.detail}", raw))
    return outcomes
