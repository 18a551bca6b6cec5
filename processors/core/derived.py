"""The derived events of the pipeline step, built without re-validating what the core computed.

Called by :class:`processors.core.pipeline.SymbolProcessor` for every snapshot, signal, candle
and daily summary it emits (one or more per tick: the hot path of every runner). Validating
them with pydantic cost about half of the step: the inputs are already valid (fields copied
from a validated :class:`~schemas.events.Tick`, names and timeframes checked once per symbol
and config) and the floats the core computes are finite by construction (prices and volumes
are bounded before any arithmetic). So each builder checks cheaply what could still go wrong —
every computed float finite, the symbol and timeframes valid (``trusted``, decided once) — and
then sets the fields directly, the way pydantic's ``model_construct`` does. When a check fails
it calls the validated constructor instead, which raises exactly as before (or accepts, e.g. a
sum of finite values that overflowed only in the check). The result is the same object the
validated constructor gives for the same arguments: equal, same ``model_fields_set``, same JSON
bytes (tests/unit/core/test_core_derived.py compares them over random series).
"""

from __future__ import annotations

import functools
import math
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from schemas.events import (
    Candle,
    DailySummary,
    Event,
    IndicatorSnapshot,
    Lineage,
    Signal,
    SignalOutcome,
    Symbol,
    Timeframe,
    Venue,
)

EventT = TypeVar("EventT", bound=Event)

_new = object.__new__
_set = object.__setattr__
_isfinite = math.isfinite
_SYMBOL: TypeAdapter[str] = TypeAdapter(Symbol)
_TIMEFRAME: TypeAdapter[str] = TypeAdapter(Timeframe)
_VENUE: TypeAdapter[str] = TypeAdapter(Venue)


def _version(model: type[Event]) -> int:
    default = model.model_fields["schema_version"].default
    assert isinstance(default, int)  # noqa: S101 - every event has an int schema_version default
    return default


_SNAPSHOT_VERSION = _version(IndicatorSnapshot)
_SIGNAL_VERSION = _version(Signal)
_CANDLE_VERSION = _version(Candle)
_SUMMARY_VERSION = _version(DailySummary)
_OUTCOME_VERSION = _version(SignalOutcome)
# The fields a validated construction marks as set: every argument (schema_version is a default).
_SNAPSHOT_SET = frozenset(IndicatorSnapshot.model_fields) - {"schema_version"}
_SIGNAL_SET = frozenset(Signal.model_fields) - {"schema_version"}
_CANDLE_SET = frozenset(Candle.model_fields) - {"schema_version"}
_SUMMARY_SET = frozenset(DailySummary.model_fields) - {"schema_version"}
_OUTCOME_SET = frozenset(SignalOutcome.model_fields) - {"schema_version"}


@functools.lru_cache(maxsize=65_536)
def valid_symbol(symbol: str) -> bool:
    """Whether ``symbol`` passes the events' ``symbol`` field (pattern, length); cached."""
    try:
        _SYMBOL.validate_python(symbol)
    except ValidationError:
        return False
    return True


@functools.lru_cache(maxsize=65_536)
def valid_instrument(symbol: str, venue: str) -> bool:
    """Whether ``symbol`` and ``venue`` pass the events' ``symbol`` and ``venue`` fields; cached."""
    try:
        _SYMBOL.validate_python(symbol)
        _VENUE.validate_python(venue)
    except ValidationError:
        return False
    return True


def valid_timeframes(timeframes: tuple[str, ...]) -> bool:
    """Whether every name passes the events' ``timeframe`` field."""
    try:
        for timeframe in timeframes:
            _TIMEFRAME.validate_python(timeframe)
    except ValidationError:
        return False
    return True


def _build(model: type[EventT], fields: dict[str, Any], fields_set: frozenset[str]) -> EventT:
    """An instance of ``model`` holding ``fields`` (in field order), as ``model_construct`` makes it."""
    event = _new(model)
    _set(event, "__dict__", fields)
    _set(event, "__pydantic_fields_set__", set(fields_set))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


def _finite_values(values: dict[str, float | None]) -> bool:
    # A sum of finite floats is finite unless it overflows (then the validated path decides);
    # one NaN or infinity makes it non-finite. filter(None, …) drops None (and zeros).
    return _isfinite(sum(filter(None, values.values())))


def snapshot(trusted: bool, symbol: str, venue: str, timeframe: str, price: float, values: dict[str, float | None],
             ts_event: datetime, ts_init: datetime, lineage: Lineage) -> IndicatorSnapshot:
    """``IndicatorSnapshot(...)``; ``price`` from a validated tick, ``values`` computed (owned by the event)."""
    if trusted and _finite_values(values):
        return _build(IndicatorSnapshot, {
            "schema_version": _SNAPSHOT_VERSION, "symbol": symbol, "venue": venue, "timeframe": timeframe, "price": price,
            "values": values, "ts_event": ts_event, "ts_init": ts_init, "lineage": lineage,
        }, _SNAPSHOT_SET)
    return IndicatorSnapshot(symbol=symbol, venue=venue, timeframe=timeframe, price=price, values=values, ts_event=ts_event,
                             ts_init=ts_init, lineage=lineage)


def signal(trusted: bool, signal_id: str, symbol: str, venue: str, timeframe: str, strategy: str, version: str,
           condition: str, side: str, price: float, indicators: dict[str, float | None], ts_event: datetime,
           ts_init: datetime, lineage: Lineage) -> Signal:
    """``Signal(...)``; ``signal_id`` from ``make_signal_id``, the strategy's name, version, condition text and
    ``side`` from the compiled strategies (``trusted`` also vouches for the strategy's name and condition)."""
    if trusted and _finite_values(indicators):
        return _build(Signal, {
            "schema_version": _SIGNAL_VERSION, "signal_id": signal_id, "symbol": symbol, "venue": venue,
            "timeframe": timeframe, "rule": strategy, "strategy": strategy, "strategy_version": version,
            "condition": condition, "side": side, "price": price, "indicators": dict(indicators),
            "ts_event": ts_event, "ts_init": ts_init, "lineage": lineage,
        }, _SIGNAL_SET)
    return Signal(signal_id=signal_id, symbol=symbol, venue=venue, timeframe=timeframe, rule=strategy,
                  strategy=strategy, strategy_version=version, condition=condition, side=side, price=price,
                  indicators=indicators, ts_event=ts_event, ts_init=ts_init, lineage=lineage)


def outcome(trusted: bool, outcome_id: str, signal_id: str, symbol: str, venue: str, strategy: str, version: str | None,
            timeframe: str, side: str, horizon: str, signal_price: float, signal_ts: datetime, price: float,
            return_gross: float, return_net: float, fee: float, ts_event: datetime, ts_init: datetime,
            lineage: Lineage) -> SignalOutcome:
    """``SignalOutcome(...)``; the signal's fields as its pending entry kept them, ``price`` a validated tick's."""
    if trusted and _isfinite(return_gross) and _isfinite(return_net):
        return _build(SignalOutcome, {
            "schema_version": _OUTCOME_VERSION, "outcome_id": outcome_id, "signal_id": signal_id, "symbol": symbol,
            "venue": venue, "strategy": strategy, "strategy_version": version, "timeframe": timeframe,
            "side": side, "horizon": horizon, "signal_price": signal_price, "signal_ts": signal_ts, "price": price,
            "return_gross": return_gross, "return_net": return_net, "fee": fee, "ts_event": ts_event,
            "ts_init": ts_init, "lineage": lineage,
        }, _OUTCOME_SET)
    return SignalOutcome(outcome_id=outcome_id, signal_id=signal_id, symbol=symbol, venue=venue, strategy=strategy,
                         strategy_version=version, timeframe=timeframe, side=side, horizon=horizon,
                         signal_price=signal_price, signal_ts=signal_ts, price=price, return_gross=return_gross,
                         return_net=return_net, fee=fee, ts_event=ts_event, ts_init=ts_init, lineage=lineage)


def candle(trusted: bool, symbol: str, venue: str, timeframe: str, ts_open: datetime, ts_close: datetime, open_: float,
           high: float, low: float, close: float, volume: float, trade_count: int, final: bool, ts_event: datetime,
           ts_init: datetime, lineage: Lineage) -> Candle:
    """``Candle(...)``; prices from validated ticks, ``volume`` a sum of their volumes, ``final`` False while it forms."""
    if trusted and _isfinite(volume) and trade_count >= 1:
        return _build(Candle, {
            "schema_version": _CANDLE_VERSION, "symbol": symbol, "venue": venue, "timeframe": timeframe, "ts_open": ts_open,
            "ts_close": ts_close, "open": open_, "high": high, "low": low, "close": close, "volume": volume,
            "trade_count": trade_count, "final": final, "ts_event": ts_event, "ts_init": ts_init, "lineage": lineage,
        }, _CANDLE_SET)
    return Candle(symbol=symbol, venue=venue, timeframe=timeframe, ts_open=ts_open, ts_close=ts_close, open=open_, high=high,
                  low=low, close=close, volume=volume, trade_count=trade_count, final=final, ts_event=ts_event,
                  ts_init=ts_init, lineage=lineage)


def summary(trusted: bool, symbol: str, venue: str, day: date, open_: float, high: float, low: float, close: float,
            mean_price: float, vwap: float | None, volume: float, tick_count: int, buy_count: int,
            sell_count: int, final: bool, ts_event: datetime, ts_init: datetime, lineage: Lineage) -> DailySummary:
    """``DailySummary(...)``; prices from validated ticks, ``mean_price``/``vwap``/``volume`` computed."""
    if (trusted and _isfinite(mean_price + volume) and mean_price > 0.0 and tick_count >= 1
            and (vwap is None or (_isfinite(vwap) and vwap > 0.0))):
        return _build(DailySummary, {
            "schema_version": _SUMMARY_VERSION, "symbol": symbol, "venue": venue, "date": day, "open": open_, "high": high,
            "low": low, "close": close, "mean_price": mean_price, "vwap": vwap, "volume": volume,
            "tick_count": tick_count, "buy_count": buy_count, "sell_count": sell_count, "final": final,
            "ts_event": ts_event, "ts_init": ts_init, "lineage": lineage,
        }, _SUMMARY_SET)
    return DailySummary(symbol=symbol, venue=venue, date=day, open=open_, high=high, low=low, close=close, mean_price=mean_price,
                        vwap=vwap, volume=volume, tick_count=tick_count, buy_count=buy_count, sell_count=sell_count,
                        final=final, ts_event=ts_event, ts_init=ts_init, lineage=lineage)
