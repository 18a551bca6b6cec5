"""The Redis key layout of the views: the only place that spells a key.

Every key starts with the deployment's ``REDIS_KEY_PREFIX`` (``ss:`` by default). Views are per
instrument: ``{INS}`` is the instrument text ``SYMBOL@venue`` (:mod:`schemas.instruments`). A key is
only ever built from an instrument, timeframe or rule that has passed the event schema's pattern
(writer side) or the API's validation (reader side); :class:`ViewKeys` checks again and
raises :class:`InvalidKeyPartError` rather than build a key from anything else.

| key | type | content |
|---|---|---|
| ``{p}instruments`` | set | every instrument seen on any input topic |
| ``{p}latest:{INS}`` | hash | ``tick`` → Tick JSON, ``ind:{tf}`` → IndicatorSnapshot JSON |
| ``{p}rec:{INS}`` | hash | ``*`` → Recommendation JSON (any timeframe), ``tf:{tf}`` → per timeframe, ``st:{strategy}`` → per strategy (any of its timeframes), ``st:{strategy}:tf:{tf}`` → per strategy and timeframe |
| ``{p}candles:{INS}:{tf}`` | zset | score = window open (ms), member = window open (ms) as text |
| ``{p}candles:{INS}:{tf}:data`` | hash | window open (ms) → Candle JSON |
| ``{p}ind:{INS}:{tf}`` | zset | score = ts_event (ms), member = IndicatorSnapshot JSON (recent history) |
| ``{p}signals:{INS}`` | zset | score = ts_event (ms), member = Signal JSON (recent, newest = highest score) |
| ``{p}signals:{INS}:rule:{rule}`` | zset | the same, for one rule (strategy name) |
| ``{p}daily:{INS}`` | hash | ``YYYY-MM-DD`` → DailySummary JSON |
| ``{p}outcomes:{INS}`` | zset | score = the signal's ts_event (ms), member = SignalOutcome JSON (the newest, for the scorecards) |

Events are stored as current-version JSON: an event upcast from an older record is re-encoded.
| ``{key}:pos`` | hash | for each hash above: field → log offset the field reflects |

Channels: ``{p}live:updates`` (the materializer's compact updates after each batch) and
``{p}live:notifications`` (the notifier's browser notifications).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from schemas.instruments import VENUE_PATTERN
from schemas.symbols import NORMALIZED_SYMBOL_PATTERN
from schemas.timeframes import TIMEFRAME_PATTERN

INSTRUMENT_PATTERN = NORMALIZED_SYMBOL_PATTERN.rstrip("$") + "@" + VENUE_PATTERN.lstrip("^")
_INSTRUMENT = re.compile(INSTRUMENT_PATTERN)
_TIMEFRAME = re.compile(TIMEFRAME_PATTERN)
RULE_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
"""A rule or strategy name (schemas.events.StrategyName): never a ':' or a glob character."""
_RULE = re.compile(RULE_PATTERN)
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
POSITION_SUFFIX = ":pos"
ANY_TIMEFRAME = "*"


class InvalidKeyPartError(ValueError):
    """An instrument, timeframe or rule did not match its pattern; no key is built from it."""


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
    def instruments(self) -> str:
        return f"{self.prefix}instruments"

    @property
    def live_updates(self) -> str:
        return f"{self.prefix}live:updates"

    @property
    def live_notifications(self) -> str:
        return f"{self.prefix}live:notifications"

    def latest(self, instrument: str) -> str:
        return f"{self.prefix}latest:{_check(_INSTRUMENT, instrument, 'instrument')}"

    @staticmethod
    def latest_indicator_field(timeframe: str) -> str:
        return f"ind:{_check(_TIMEFRAME, timeframe, 'timeframe')}"

    def recommendation(self, instrument: str) -> str:
        return f"{self.prefix}rec:{_check(_INSTRUMENT, instrument, 'instrument')}"

    @staticmethod
    def recommendation_field(timeframe: str | None, strategy: str | None = None) -> str:
        """The field of one (strategy, timeframe) choice; None is "any"."""
        if strategy is not None:
            base = f"st:{_check(_RULE, strategy, 'strategy')}"
            return base if timeframe is None else f"{base}:tf:{_check(_TIMEFRAME, timeframe, 'timeframe')}"
        if timeframe is None:
            return ANY_TIMEFRAME
        return f"tf:{_check(_TIMEFRAME, timeframe, 'timeframe')}"

    def candles(self, instrument: str, timeframe: str) -> str:
        return f"{self.prefix}candles:{_check(_INSTRUMENT, instrument, 'instrument')}:{_check(_TIMEFRAME, timeframe, 'timeframe')}"

    def candles_data(self, instrument: str, timeframe: str) -> str:
        return self.candles(instrument, timeframe) + ":data"

    def indicator_history(self, instrument: str, timeframe: str) -> str:
        return f"{self.prefix}ind:{_check(_INSTRUMENT, instrument, 'instrument')}:{_check(_TIMEFRAME, timeframe, 'timeframe')}"

    def signals(self, instrument: str, rule: str | None = None) -> str:
        base = f"{self.prefix}signals:{_check(_INSTRUMENT, instrument, 'instrument')}"
        return base if rule is None else f"{base}:rule:{_check(_RULE, rule, 'rule')}"

    def daily(self, instrument: str) -> str:
        return f"{self.prefix}daily:{_check(_INSTRUMENT, instrument, 'instrument')}"

    def outcomes(self, instrument: str) -> str:
        """The instrument's newest signal outcomes (``signals.outcomes``), from which the API sums up scorecards."""
        return f"{self.prefix}outcomes:{_check(_INSTRUMENT, instrument, 'instrument')}"

    @staticmethod
    def daily_field(day: str) -> str:
        return _check(_DATE, day, "date")
