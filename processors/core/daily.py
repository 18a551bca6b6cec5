"""The running aggregate of one symbol over one UTC day.

Open and close are by event time (:mod:`processors.core.ohlc`); mean price is the plain mean of every accepted tick's price; VWAP is
Σ(price·volume)/Σ(volume), ``None`` when the day has no volume; BUY/SELL counts cover
every rule and timeframe. Sums of positive terms only, so the relative rounding error is
at most (ticks in the day)·ε.
"""

from __future__ import annotations

from processors.core.ohlc import OhlcBar
from processors.core.origin import Origin
from processors.core.plain import StateFormatError

_WHAT = "daily aggregate state"


class DayAggregate(OhlcBar):
    """The mutable aggregate of one UTC day; ``day`` is the day number since 1970-01-01.

    ``origin``: the last tick folded in (:mod:`processors.core.origin`), what its summaries carry; None
    only for a day restored from a state written before origins were kept.
    """

    __slots__ = ("day", "price_sum", "pv", "volume", "count", "buys", "sells", "origin")

    def __init__(self, day: int, ts: int, price: float, volume: float, origin: Origin | None) -> None:
        self.day = day
        self.origin = origin
        self.start_bar(ts, price)
        self.price_sum = price
        self.pv = price * volume
        self.volume = volume
        self.count = 1
        self.buys = 0
        self.sells = 0

    def add(self, ts: int, price: float, volume: float, origin: Origin | None) -> None:
        self.origin = origin
        # the OHLC fold of processors/core/ohlc.py, as CandleWindow.add writes it
        if ts < self.open_ts:
            self.open = price
            self.open_ts = ts
        if ts >= self.close_ts:
            self.close = price
            self.close_ts = ts
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.price_sum += price
        if volume > 0.0:
            self.pv += price * volume
            self.volume += volume
        self.count += 1

    @property
    def mean_price(self) -> float:
        return self.price_sum / self.count

    @property
    def vwap(self) -> float | None:
        return self.pv / self.volume if self.volume > 0.0 else None

    def dump(self) -> list[object]:
        plain: list[object] = [self.day, self.open, self.open_ts, self.high, self.low, self.close, self.close_ts,
                               self.price_sum, self.pv, self.volume, self.count, self.buys, self.sells]
        if self.origin is not None:
            plain.append(self.origin.dump())
        return plain

    @classmethod
    def load(cls, plain: object) -> DayAggregate:
        """Rebuild from :meth:`dump` (13 items without an origin: a state written before origins were kept)."""
        if not isinstance(plain, list) or len(plain) not in (13, 14):
            raise StateFormatError(f"{_WHAT}: expected a list of 13 or 14 values")
        (day, open_, open_ts, high, low, close, close_ts, price_sum, pv, volume, count, buys,
         sells) = plain[:13]
        for number in (day, count, buys, sells):
            if type(number) is not int:
                raise StateFormatError(f"{_WHAT}: expected an integer, got {number!r}")
        aggregate = cls.__new__(cls)
        aggregate.load_bar(open_, open_ts, high, low, close, close_ts, _WHAT)
        aggregate.day, aggregate.count, aggregate.buys, aggregate.sells = day, count, buys, sells
        aggregate.origin = Origin.load(plain[13]) if len(plain) == 14 else None
        try:
            aggregate.price_sum, aggregate.pv, aggregate.volume = float(price_sum), float(pv), float(volume)
        except (TypeError, ValueError) as error:
            raise StateFormatError(f"{_WHAT}: {error}") from None
        return aggregate
