"""Signals for notifier tests: real :class:`~schemas.events.Signal` events with deterministic ids."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from schemas.events import Lineage, Signal, make_signal_id

_offsets = itertools.count(1)
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def make_signal(*, symbol: str = "BTC-USD", venue: str = "coinbase", timeframe: str = "1m", rule: str = "rsi_reversal", side: str = "BUY",
                price: float = 43251.2, ts_event: datetime = T0, offset: int | None = None,
                indicators: dict[str, float | None] | None = None) -> Signal:
    """A valid signal; each call gets a distinct log position (hence a distinct id) unless ``offset`` is given."""
    position = next(_offsets) if offset is None else offset
    return Signal(
        signal_id=make_signal_id(symbol, venue, timeframe, rule, side, ts_event, 0, position),
        symbol=symbol, venue=venue, timeframe=timeframe, rule=rule, strategy=rule, strategy_version=None,
        condition=None, side=side, price=price,  # type: ignore[arg-type]
        indicators=indicators if indicators is not None else {"rsi_14": 30.42, "ema_12": 43200.11, "macd": None},
        ts_event=ts_event, ts_init=ts_event, lineage=Lineage(topic="ticks", partition=0, offset=position),
    )
