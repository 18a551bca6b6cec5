"""The Redis key layout of the views: the only place that spells a key.

Every key starts with the deployment's ``REDIS_KEY_PREFIX`` (``ss:`` by default). A key is
only ever built from a symbol, timeframe or rule that has passed the event schema's pattern
(writer side) or the API's validation (reader side); :class:`ViewKeys` checks again and
raises :class:`InvalidKeyPartError` rather than build a key from anything else.

| key | type | content |
|---|---|---|
| ``{p}symbols`` | set | every symbol seen on any input topic |
| ``{p}latest:{SYM}`` | hash | ``tick`` → Tick JSON, ``ind:{tf}`` → IndicatorSnapshot JSON |
| ``{p}rec:{SYM}`` | hash | ``*`` → Recommendation JSON (any timeframe), ``tf:{tf}`` → per timeframe |
| ``{p}candles:{SYM}:{tf}`` | zset | score = window open (ms), member = window open (ms) as text |
| ``{p}candles:{SYM}:{tf}:data`` | hash | window open (ms) → Candle JSON |
| ``{p}ind:{SYM}:{tf}`` | zset | score = ts_event (ms), member = IndicatorSnapshot JSON (recent history) |
| ``{p}signals:{SYM}`` | zset | score = ts_event (ms), member = Signal JSON (recent, newest = highest score) |
| ``{p}signals:{SYM}:rule:{rule}`` | zset | the same, for one rule |
| ``{p}daily:{SYM}`` | hash | ``YYYY-MM-DD`` → DailySummary JSON |
| ``{key}:pos`` | hash | for each hash above: field → log offset the field reflects |

Channels: ``{p}live:updates`` (the materializer's compact updates after each batch) and
``{p}live:notifications`` (the notifier's browser notifications).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from schemas.symbols import NORMALIZED_SYMBOL_PATTERN
from schemas.timeframes import TIMEFRAME_PATTERN

_SYMBOL = re.compile(NORMALIZED_SYMBOL_PATTERN)
_TIMEFRAME = re.compile(TIMEFRAME_PATTERN)
_RULE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
POSITION_SUFFIX = ":pos"
ANY_TIMEFRAME = "*"


class InvalidKeyPartError(ValueError):
    """A symbol, timeframe or rule did not match its pattern; no key is built from it."""


@lru_cache(maxsize=65_536)  # the materializer builds the same few keys for every event of a symbol
def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidKeyPartError(f"invalid {what} for a view key: {value!r}")
    return value


def position_key(data_key: str) -> str:
    """The hash holding the log offset of every field of ``data_key``."""
    return data_key + POSITION_SUFFIX


@dataclass(frozen=True)
class ViewKeys:
    """Key names under one prefix. Cheap to build; holds no connection."""

    prefix: str

    @property
    def symbols(self) -> str:
        return f"{self.prefix}symbols"

    @property
    def live_updates(self) -> str:
        return f"{self.prefix}live:updates"

    @property
    def live_notifications(self) -> str:
        return f"{self.prefix}live:notifications"

    def latest(self, symbol: str) -> str:
        return f"{self.prefix}latest:{_check(_SYMBOL, symbol, 'symbol')}"

    @staticmethod
    def latest_indicator_field(timeframe: str) -> str:
        return f"ind:{_check(_TIMEFRAME, timeframe, 'timeframe')}"

    def recommendation(self, symbol: str) -> str:
        return f"{self.prefix}rec:{_check(_SYMBOL, symbol, 'symbol')}"

    @staticmethod
    def recommendation_field(timeframe: str | None) -> str:
        if timeframe is None:
            return ANY_TIMEFRAME
        return f"tf:{_check(_TIMEFRAME, timeframe, 'timeframe')}"

    def candles(self, symbol: str, timeframe: str) -> str:
        return f"{self.prefix}candles:{_check(_SYMBOL, symbol, 'symbol')}:{_check(_TIMEFRAME, timeframe, 'timeframe')}"

    def candles_data(self, symbol: str, timeframe: str) -> str:
        return self.candles(symbol, timeframe) + ":data"

    def indicator_history(self, symbol: str, timeframe: str) -> str:
        return f"{self.prefix}ind:{_check(_SYMBOL, symbol, 'symbol')}:{_check(_TIMEFRAME, timeframe, 'timeframe')}"

    def signals(self, symbol: str, rule: str | None = None) -> str:
        base = f"{self.prefix}signals:{_check(_SYMBOL, symbol, 'symbol')}"
        return base if rule is None else f"{base}:rule:{_check(_RULE, rule, 'rule')}"

    def daily(self, symbol: str) -> str:
        return f"{self.prefix}daily:{_check(_SYMBOL, symbol, 'symbol')}"

    @staticmethod
    def daily_field(day: str) -> str:
        return _check(_DATE, day, "date")
