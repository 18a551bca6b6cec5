"""The materializer's input records: ``BatchPlanner.plan`` (what ``Materializer.process`` calls per batch),
then ``ViewStore.apply`` on the real Redis and the API's reader on what was stored.

Records: schema-valid events of every kind with extreme values (any date from year 1 to 9999,
prices from 5e-324 to 1.8e308, any timeframe the pattern allows, huge counts), their JSON
mutated (fields dropped, replaced, added), garbage bytes, tombstones, wrong keys, unknown topics.
Properties: planning never raises and accounts for every record (a view write or one dead
letter with a known code); the planned batch applies to Redis; every view the API serves can
be read back afterwards (the dashboard never meets a document it cannot parse).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from hypothesis import event, example, given
from hypothesis import strategies as st
from prometheus_client import REGISTRY as METRICS

from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputRecord, InputTopics
from processors.materialize.reader import ViewReader
from processors.materialize.store import ViewStore
from schemas.events import (
    Candle,
    DailySummary,
    DeadLetter,
    Event,
    IndicatorSnapshot,
    Lineage,
    Signal,
    Tick,
    encode,
)
from schemas.topics import TopicRegistry
from tests.fuzz.strategies import fuzz, json_values, mostly_ascii_bytes, mutated

REGISTRY = TopicRegistry(prefix="f.", candle_timeframes=("1m", "1d"))
TOPICS = InputTopics.from_registry(REGISTRY)
NAMES = {"tick": REGISTRY.ticks.name, "indicators": REGISTRY.indicators.name, "signal": REGISTRY.signals.name,
         "daily": REGISTRY.aggregates_daily.name, "1m": REGISTRY.candles("1m").name, "1d": REGISTRY.candles("1d").name}
REASONS = {"unknown_topic", "empty_value", "invalid_json", "schema_invalid", "key_mismatch", "timeframe_mismatch",
           "schema_version_unsupported"}
SYMBOLS = ["BTC-USD", "ETH-USD", "0", "A.B_C-D"]
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)

MOMENTS = st.one_of(st.datetimes(timezones=st.just(UTC)), st.sampled_from([
    datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 50, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC), NOW]))
PRICES = st.one_of(st.floats(min_value=0, exclude_min=True, allow_infinity=False),
                   st.sampled_from([5e-324, 1.7976931348623157e308, 64000.5]))
FLOATS = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
TIMEFRAMES = st.sampled_from(["tick", "1m", "1d", "7s", "9999d", "1s"])
LINEAGE = st.builds(Lineage, topic=st.sampled_from(["ticks", "f.ticks", "x" * 300]), partition=st.integers(-1, 2**31),
                    offset=st.integers(0, 2**63))
SYMBOL = st.sampled_from(SYMBOLS)
VENUE = st.sampled_from(["fuzz", "index", "a" * 32])
COUNT = st.integers(1, 2**63)

TICKS = st.builds(Tick, symbol=SYMBOL, venue=VENUE, price=PRICES, volume=st.one_of(st.none(), st.floats(min_value=0, allow_infinity=False)),
                  ts_event=MOMENTS, ts_init=MOMENTS, source=st.just("fuzz"), source_id=st.text(min_size=1, max_size=128))
SNAPSHOTS = st.builds(IndicatorSnapshot, symbol=SYMBOL, venue=VENUE, timeframe=TIMEFRAMES, price=PRICES,
                      values=st.dictionaries(st.text(max_size=20), FLOATS, max_size=5), ts_event=MOMENTS,
                      ts_init=MOMENTS, lineage=LINEAGE)
SIGNALS = st.builds(Signal, signal_id=st.text("0123456789abcdef", min_size=32, max_size=32), symbol=SYMBOL,
                    venue=VENUE, timeframe=TIMEFRAMES, rule=st.from_regex(r"^[a-z][a-z0-9_]{0,63}$", fullmatch=True),
                    strategy=st.from_regex(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$", fullmatch=True),
                    strategy_version=st.one_of(st.none(), st.from_regex(r"^[0-9a-f]{16}$", fullmatch=True)),
                    condition=st.one_of(st.none(), st.text(max_size=300)),
                    side=st.sampled_from(["BUY", "SELL"]), price=PRICES,
                    indicators=st.dictionaries(st.text(max_size=20), FLOATS, max_size=5), ts_event=MOMENTS,
                    ts_init=MOMENTS, lineage=LINEAGE)


def _candle(timeframe: str, start: datetime, prices: list[float], volume: float, count: int, lineage: Lineage) -> Candle:
    return Candle(symbol="BTC-USD", venue="fuzz", timeframe=timeframe, ts_open=start, ts_close=start, open=prices[0],
                  high=max(prices), low=min(prices), close=prices[-1], volume=volume, trade_count=count, final=True,
                  ts_event=start, ts_init=start, lineage=lineage)


CANDLES = st.builds(_candle, st.sampled_from(["1m", "1d"]), MOMENTS, st.lists(PRICES, min_size=4, max_size=4),
                    st.floats(min_value=0, allow_infinity=False), COUNT, LINEAGE)
DAILIES = st.builds(DailySummary, symbol=SYMBOL, venue=VENUE, date=st.dates(), open=PRICES, high=PRICES, low=PRICES, close=PRICES,
                    mean_price=PRICES, vwap=st.one_of(st.none(), PRICES), volume=st.floats(min_value=0, allow_infinity=False),
                    tick_count=COUNT, buy_count=st.integers(0, 2**63), sell_count=st.integers(0, 2**63),
                    final=st.booleans(), ts_event=MOMENTS, ts_init=MOMENTS, lineage=LINEAGE)
EVENTS: list[tuple[str, st.SearchStrategy[Event]]] = [
    ("tick", TICKS), ("indicators", SNAPSHOTS), ("signal", SIGNALS), ("daily", DAILIES), ("candle", CANDLES)]


@st.composite
def records(draw: st.DrawFn) -> tuple[str, bytes | None, bytes | None]:
    """(topic, key, value) of one consumed record."""
    kind, events = draw(st.sampled_from(EVENTS))
    event = draw(events)
    topic = NAMES[event.timeframe] if isinstance(event, Candle) else NAMES[kind]  # type: ignore[attr-defined]
    symbol = f"{event.symbol}@{event.venue}".encode()  # type: ignore[attr-defined]
    style = draw(st.integers(0, 9))
    value: bytes | None = encode(event)
    if style == 7:
        value = json.dumps(draw(mutated(json.loads(value))), allow_nan=True, default=str).encode()
    elif style == 8:
        value = draw(st.one_of(st.none(), st.just(b""), mostly_ascii_bytes(120),
                               json_values().map(lambda v: json.dumps(v, allow_nan=True, default=str).encode())))
    elif style == 9:
        topic = draw(st.sampled_from([*NAMES.values(), "f.unknown", "f.candles.5m", ""]))
    key = draw(st.one_of(st.just(symbol), st.just(symbol), st.just(symbol), st.none(),
                         st.sampled_from([b"", b"btc-usd", b"ETH-USD@fuzz", event.symbol.encode(), b"\xff"])))
    return topic, key, value


def _plan(batch: list[tuple[str, bytes | None, bytes | None]], prefix: str = "fuzz:") -> tuple[BatchPlanner, object]:
    planner = BatchPlanner(ViewKeys(prefix), TOPICS, Caps(candles=5, indicator_history=5, signals=5), lambda: NOW)
    inputs = [InputRecord(topic, 0, offset, key, value) for offset, (topic, key, value) in enumerate(batch)]
    planned = planner.plan(inputs)
    assert planned.records == len(inputs)
    assert sum(planned.events_by_topic.values()) + len(planned.dead_letters) == len(inputs)
    for letter in planned.dead_letters:
        assert letter.reason in REASONS, letter
        assert DeadLetter.model_validate_json(encode(letter)) == letter
    return planner, planned


SIGNAL_AT_THE_END = encode(Signal(
    signal_id="0" * 32, symbol="BTC-USD", venue="fuzz", timeframe="tick", rule="ema_cross", side="BUY", price=1.0, indicators={},
    strategy="ema_cross", strategy_version=None, condition=None,
    ts_event=datetime(9999, 12, 31, 23, 59, tzinfo=UTC), ts_init=NOW, lineage=Lineage(topic="t", partition=0, offset=0)))


@given(batch=st.lists(records(), min_size=1, max_size=30))
@example(batch=[(NAMES["signal"], b"BTC-USD@fuzz", SIGNAL_AT_THE_END)])
@example(batch=[(NAMES["1m"], b"BTC-USD", b'{"ts_open":"9999-12-31T23:59:00-05:00"}')])
@fuzz(600)
def test_planner_accounts_for_every_record(batch: list[tuple[str, bytes | None, bytes | None]]) -> None:
    _plan(batch)


@pytest.fixture(scope="module")
def views_redis(stack):  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(stack.redis_url)
    prefix = f"fuzz{uuid.uuid4().hex[:8]}."
    yield client, prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])
    client.close()


@pytest.mark.integration
@given(batch=st.lists(records(), min_size=1, max_size=20))
@example(batch=[(NAMES["signal"], b"BTC-USD@fuzz", SIGNAL_AT_THE_END)])
@fuzz(200)
def test_stored_views_read_back(views_redis, batch: list[tuple[str, bytes | None, bytes | None]]) -> None:
    client, base = views_redis
    prefix = f"{base}{uuid.uuid4().hex[:6]}:"
    keys = ViewKeys(prefix)
    _, planned = _plan(batch, prefix)
    ViewStore(client, keys, publish=False).apply(planned)  # type: ignore[arg-type]
    corrupt_before = _corrupt()
    event(f"instruments stored: {min(len(client.smembers(keys.instruments)), 2)}")
    for moment in (NOW, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)):
        reader = ViewReader(client, keys, lambda moment=moment: moment)
        for symbol in reader.instruments():
            reader.latest(symbol)
            for timeframe in ("tick", "1m", "1d", "7s"):
                reader.recommendation(symbol, timeframe)
                reader.indicators(symbol, timeframe, 1000)
            reader.recommendation(symbol)
            for timeframe in ("1m", "1d"):
                reader.candles(symbol, timeframe, 1000)
            reader.signals(symbol, 1000)
            reader.signals(symbol, 10, side="BUY")
            reader.daily(symbol)
            reader.daily(symbol, NOW.date() - timedelta(days=1), NOW.date())
    assert _corrupt() == corrupt_before, "a stored document did not parse back: the reader skipped it"


def _corrupt() -> float:
    return sum(sample.value for metric in METRICS.collect() if metric.name == "stockstream_views_corrupt_documents"
               for sample in metric.samples if sample.name.endswith("_total"))
