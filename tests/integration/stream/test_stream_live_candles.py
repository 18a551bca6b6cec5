"""Live candles and quiet feeds on the real stack: ``stockstream process`` + ``stockstream materialize``.

One partition, two instruments: QUIET ticks for ten seconds and stops, BUSY ticks on for longer
than a minute. The quiet instrument's 1m candle is closed — final, by a busy tick's record, the
first whose event time reaches window end + grace — without any newer tick of its own; its daily
view counts every one of its ticks; forming candles (``final: false``) of both go through the
topics into the Redis views, and the final candle of a window is what its view keeps. Feeds are
driven by count and every wait is on a condition with a deadline.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import redis
from stream_support import T0, Processor, produce_many, wait_drained

from processors.materialize.keys import ViewKeys
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import Candle, DailySummary, Tick, encode
from schemas.upcasters import decode
from tests.support.kafka_tools import read_topic, wait_until
from tests.support.processes import running

pytestmark = [pytest.mark.integration]

QUIET, BUSY = "QUI-USD", "BUS-USD"
GRACE_S = 5


def tick(symbol: str, seconds: float, price: float, n: int) -> tuple[bytes, bytes]:
    moment = T0 + timedelta(seconds=seconds)
    event = Tick(symbol=symbol, venue="test", price=price, volume=1.0, ts_event=moment, ts_init=moment, source="test",
                 source_id=f"{symbol}-{n}")
    return f"{symbol}@test".encode(), encode(event)


def test_a_quiet_symbols_candle_is_closed_by_another_symbols_ticks_and_forming_candles_reach_the_views(
        stack, namespaces, tmp_path):
    namespace = namespaces(f"tlive{uuid.uuid4().hex[:8]}.")  # topics and Redis keys of its own, dropped afterwards
    bootstrap = stack.kafka_bootstrap
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace, partitions=1)
    topics = settings.topics()
    ensure_topics(settings, topics.all())
    # QUIET: 11 ticks in [12:00:00, 12:00:10]; BUSY: one every 0.5 s over [12:00:00, 12:01:20).
    records = [tick(QUIET, s, 100.0 + s, s) for s in range(11)]
    records += [tick(BUSY, n / 2, 50.0 + (n % 7), n) for n in range(160)]
    records.sort(key=lambda record: decode(Tick, record[1]).ts_event)  # stable: QUIET before BUSY at one time
    produce_many(bootstrap, topics.ticks.name, records)
    client = redis.Redis.from_url(stack.redis_url)
    keys = ViewKeys(namespace)
    env = {"STOCKSTREAM_PARTITIONS": "1", "PROCESS_GRACE_SECONDS": str(GRACE_S), "LIVE_UPDATE_INTERVAL": "1",
           "STOCKSTREAM_TIMEFRAMES": "1m"}
    processor = Processor(bootstrap, namespace, f"{namespace}g", tmp_path / "state", **env)
    materialize_env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": stack.redis_url,
                       "STOCKSTREAM_TOPIC_PREFIX": namespace, "REDIS_KEY_PREFIX": namespace,
                       "STOCKSTREAM_PARTITIONS": "1", "STOCKSTREAM_TIMEFRAMES": "1m", "METRICS_PORT": "0"}
    try:
        with running(["materialize"], materialize_env) as materializer:
            wait_drained(bootstrap, f"{namespace}g", topics.ticks.name, processors=[processor])
            candles = [(r.offset, decode(Candle, r.value)) for r in read_topic(bootstrap, topics.candles("1m").name)]
            ticks = {r.offset: r for r in read_topic(bootstrap, topics.ticks.name)}

            # The quiet candle [12:00, 12:01): final, closed by a BUSY record at 12:01:05 (end + grace).
            [quiet_final] = [c for _, c in candles if c.symbol == QUIET and c.final]
            assert (quiet_final.ts_open, quiet_final.ts_close) == (T0, T0 + timedelta(minutes=1))
            assert (quiet_final.open, quiet_final.close, quiet_final.trade_count) == (100.0, 110.0, 11)
            # It carries its own last tick (12:00:10), not the BUSY record that closed it (docs/core.md, "What a
            # close emits"); it went out with that record's outputs, after BUSY's own final candle of the window,
            # which the same record's event time closed (and at most BUSY's forming candle sent with it).
            last_quiet = decode(Tick, ticks[quiet_final.lineage.offset].value)
            assert last_quiet.symbol == QUIET and last_quiet.ts_event == T0 + timedelta(seconds=10)
            position = next(index for index, (_, c) in enumerate(candles) if c is quiet_final)
            assert any(c.symbol == BUSY and c.final and c.ts_open == T0 for _, c in candles[position - 2:position])
            # Forming candles went out before it, one per second of stream time (a tick a second: each one).
            quiet_forming = [c for _, c in candles if c.symbol == QUIET and not c.final]
            assert [c.trade_count for c in quiet_forming] == list(range(1, 12))
            busy = [c for _, c in candles if c.symbol == BUSY]
            assert [c.ts_open for c in busy if c.final] == [T0]  # [12:01, 12:02) is still forming
            assert busy[-1].ts_open == T0 + timedelta(minutes=1) and not busy[-1].final
            # The daily summary of QUIET counts all of its ticks without a newer tick of its own.
            summaries = [decode(DailySummary, r.value) for r in read_topic(bootstrap, topics.aggregates_daily.name)]
            assert max(s.tick_count for s in summaries if s.symbol == QUIET) == 11

            # Redis: the final quiet candle, the forming busy one, the quiet day complete.
            def view(symbol: str) -> dict[int, dict]:
                data = client.hgetall(keys.candles_data(f"{symbol}@test", "1m"))
                return {int(member): json.loads(value) for member, value in data.items()}

            minute = int(T0.timestamp() * 1000)
            # BUSY's last change (12:01:19.5) waits: its update was sent at 12:01:19, due again at 12:01:20.
            wait_until(lambda: minute + 60_000 in view(BUSY) and view(BUSY)[minute + 60_000]["trade_count"] == 39
                       and view(QUIET).get(minute, {}).get("final") is True, timeout_s=60,
                       message=f"the views to show the candles; log:\n{materializer.output[-2000:]}")
            assert view(QUIET)[minute]["trade_count"] == 11
            assert view(BUSY)[minute]["final"] is True and view(BUSY)[minute + 60_000]["final"] is False
            day = T0.date().isoformat()
            wait_until(lambda: client.hget(keys.daily(f"{QUIET}@test"), keys.daily_field(day)) is not None,
                       timeout_s=60, message="the daily view")
            assert json.loads(client.hget(keys.daily(f"{QUIET}@test"), keys.daily_field(day)))["tick_count"] == 11

            # A forming candle of the closed window arriving late (a replay, another run) never replaces it;
            # BUSY's next ticks (12:01:20, :21, :22) send its held-back change with theirs: nothing is lost.
            produce_many(bootstrap, topics.candles("1m").name, [(f"{QUIET}@test".encode(), encode(quiet_forming[0]))])
            produce_many(bootstrap, topics.ticks.name, [tick(BUSY, 80 + n, 60.0, 1_000 + n) for n in range(3)])
            wait_until(lambda: view(BUSY)[minute + 60_000]["trade_count"] == 43, timeout_s=60,
                       message=f"the next updates in the views; log:\n{materializer.output[-2000:]}")
            assert view(QUIET)[minute]["final"] is True and view(QUIET)[minute]["trade_count"] == 11
    finally:
        processor.terminate()
        for key in client.scan_iter(match=f"{namespace}*", count=1000):
            client.delete(key)
        client.close()
