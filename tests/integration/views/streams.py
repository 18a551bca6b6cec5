"""Realistic event streams for the views tests: ticks, indicator snapshots, candles, signals, daily summaries.

The stream processor is built elsewhere; these tests produce what it would produce, with
indicator values from talipp (SMA20, EMA12/26, RSI14, MACD 12/26/9, Bollinger 20/2) over a
seeded random walk, rsi_reversal / ema_cross signals on real transitions, 1m candles and a
running daily summary — so charts in the browser test have meaningful data.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from talipp.indicators import BB, EMA, MACD, RSI, SMA

from schemas.events import (
    Candle,
    DailySummary,
    Event,
    IndicatorSnapshot,
    Lineage,
    Signal,
    Tick,
    encode,
    make_signal_id,
)
from schemas.topics import TopicRegistry
from tests.support.kafka_tools import produce

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass
class Stream:
    ticks: list[Tick] = field(default_factory=list)
    indicators: list[IndicatorSnapshot] = field(default_factory=list)
    candles: list[Candle] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    daily: list[DailySummary] = field(default_factory=list)

    def extend(self, other: Stream) -> None:
        self.ticks += other.ticks
        self.indicators += other.indicators
        self.candles += other.candles
        self.signals += other.signals
        self.daily += other.daily

    @property
    def size(self) -> int:
        return len(self.ticks) + len(self.indicators) + len(self.candles) + len(self.signals) + len(self.daily)


def _value(item: object) -> float | None:
    return None if item is None else float(item)  # type: ignore[arg-type]


class _Engine:
    """Indicators of one timeframe, via talipp."""

    def __init__(self) -> None:
        self.sma = SMA(20)
        self.ema12, self.ema26 = EMA(12), EMA(26)
        self.rsi = RSI(14)
        self.macd = MACD(12, 26, 9)
        self.bb = BB(20, 2.0)

    def add(self, price: float) -> dict[str, float | None]:
        for indicator in (self.sma, self.ema12, self.ema26, self.rsi, self.macd, self.bb):
            indicator.add(price)
        macd = self.macd[-1]
        bands = self.bb[-1]
        return {
            "sma_20": _value(self.sma[-1]), "ema_12": _value(self.ema12[-1]), "ema_26": _value(self.ema26[-1]),
            "rsi_14": _value(self.rsi[-1]),
            "macd": _value(macd.macd if macd else None), "macd_signal": _value(macd.signal if macd else None),
            "macd_hist": _value(macd.histogram if macd else None),
            "bb_upper": _value(bands.ub if bands else None), "bb_middle": _value(bands.cb if bands else None),
            "bb_lower": _value(bands.lb if bands else None),
        }


def _signals(symbol: str, venue: str, timeframe: str, price: float, ts: datetime, offset: int,
             before: dict[str, float | None] | None, now: dict[str, float | None]) -> list[Signal]:
    fired: list[tuple[str, str]] = []
    if before is not None:
        r0, r1 = before["rsi_14"], now["rsi_14"]
        if r0 is not None and r1 is not None:
            if r0 < 30 <= r1:
                fired.append(("rsi_reversal", "BUY"))
            elif r0 > 70 >= r1:
                fired.append(("rsi_reversal", "SELL"))
        e0 = None if before["ema_12"] is None or before["ema_26"] is None else before["ema_12"] - before["ema_26"]
        e1 = None if now["ema_12"] is None or now["ema_26"] is None else now["ema_12"] - now["ema_26"]
        if e0 is not None and e1 is not None:
            if e0 <= 0 < e1:
                fired.append(("ema_cross", "BUY"))
            elif e0 >= 0 > e1:
                fired.append(("ema_cross", "SELL"))
    return [
        Signal(signal_id=make_signal_id(symbol, venue, timeframe, rule, side, ts, 0, offset), symbol=symbol,
               venue=venue, timeframe=timeframe, rule=rule, strategy=rule, strategy_version=None, condition=None,
               side=side, price=price,  # type: ignore[arg-type]
               indicators={k: v for k, v in now.items() if k in ("rsi_14", "ema_12", "ema_26")},
               ts_event=ts, ts_init=ts, lineage=Lineage(topic="ticks", partition=0, offset=offset))
        for rule, side in fired
    ]


def make_stream(symbol: str = "BTC-USD", count: int = 300, *, start: datetime = T0, price: float = 65_000.0,
                seed: int = 7, step: timedelta = timedelta(seconds=1), first_offset: int = 0,
                venue: str = "test", decimals: int = 2) -> Stream:
    """``count`` ticks one ``step`` apart with everything the processors would derive from them.

    Prices are rounded to ``decimals`` (a sub-cent instrument such as DOGE-USD at 0.121 needs 5).
    """
    rng = random.Random(seed)
    stream = Stream()
    tick_engine, candle_engine = _Engine(), _Engine()
    previous: dict[str, float | None] | None = None
    previous_candle: dict[str, float | None] | None = None
    window: list[Tick] = []
    day_ticks: list[Tick] = []
    buys = sells = 0
    for index in range(count):
        offset = first_offset + index
        ts = start + step * index
        # a random walk with a slow swing, so RSI visits both extremes
        price *= math.exp(0.0015 * math.sin(index / 9.0) + rng.gauss(0, 0.0012))
        tick = Tick(symbol=symbol, venue=venue, price=round(price, decimals), volume=round(rng.uniform(0.01, 2.0), 4),
                    ts_event=ts, ts_init=ts + timedelta(milliseconds=3), source="test", source_id=str(offset))
        lineage = Lineage(topic="ticks", partition=0, offset=offset)
        stream.ticks.append(tick)
        values = tick_engine.add(tick.price)
        stream.indicators.append(IndicatorSnapshot(symbol=symbol, venue=venue, timeframe="tick", price=tick.price, values=values,
                                                   ts_event=ts, ts_init=tick.ts_init, lineage=lineage))
        new_signals = _signals(symbol, venue, "tick", tick.price, ts, offset, previous, values)
        stream.signals += new_signals
        buys += sum(1 for s in new_signals if s.side == "BUY")
        sells += sum(1 for s in new_signals if s.side == "SELL")
        previous = values
        # 1m candles close when a tick of the next minute arrives
        minute = ts.replace(second=0, microsecond=0)
        if window and window[0].ts_event.replace(second=0, microsecond=0) != minute:
            opened = window[0].ts_event.replace(second=0, microsecond=0)
            candle = Candle(symbol=symbol, venue=venue, timeframe="1m", ts_open=opened, ts_close=opened + timedelta(minutes=1),
                            open=window[0].price, high=max(t.price for t in window),
                            low=min(t.price for t in window), close=window[-1].price,
                            volume=sum(t.volume or 0 for t in window), trade_count=len(window), final=True,
                            ts_event=opened + timedelta(minutes=1), ts_init=tick.ts_init, lineage=lineage)
            stream.candles.append(candle)
            candle_values = candle_engine.add(candle.close)
            stream.indicators.append(IndicatorSnapshot(
                symbol=symbol, venue=venue, timeframe="1m", price=candle.close, values=candle_values, ts_event=candle.ts_close,
                ts_init=tick.ts_init, lineage=lineage))
            candle_signals = _signals(symbol, venue, "1m", candle.close, candle.ts_close, offset, previous_candle,
                                      candle_values)
            stream.signals += candle_signals
            previous_candle = candle_values
            window = []
        window.append(tick)
        day_ticks.append(tick)
        if index % 20 == 19 or index == count - 1:
            volume = sum(t.volume or 0 for t in day_ticks)
            stream.daily.append(DailySummary(
                symbol=symbol, venue=venue, date=ts.date(), open=day_ticks[0].price, high=max(t.price for t in day_ticks),
                low=min(t.price for t in day_ticks), close=tick.price,
                mean_price=sum(t.price for t in day_ticks) / len(day_ticks),
                vwap=sum(t.price * (t.volume or 0) for t in day_ticks) / volume if volume else None,
                volume=volume, tick_count=len(day_ticks), buy_count=buys, sell_count=sells, final=False,
                ts_event=ts, ts_init=tick.ts_init, lineage=lineage))
    return stream


def records(events: list[Event]) -> list[tuple[bytes, bytes]]:
    return [(f"{event.symbol}@{event.venue}".encode(), encode(event)) for event in events]  # type: ignore[attr-defined]


def produce_stream(bootstrap: str, registry: TopicRegistry, stream: Stream) -> int:
    """Produce every event of ``stream`` to its topic (keyed by instrument); returns the number of records."""
    total = 0
    total += produce(bootstrap, registry.ticks.name, records(stream.ticks))
    total += produce(bootstrap, registry.indicators.name, records(stream.indicators))
    total += produce(bootstrap, registry.candles("1m").name, records(stream.candles))
    total += produce(bootstrap, registry.signals.name, records(stream.signals))
    total += produce(bootstrap, registry.aggregates_daily.name, records(stream.daily))
    return total
