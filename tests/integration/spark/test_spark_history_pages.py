"""History a person can scroll (issue 20): pages of candles, snapshots and signals from the Redis views while they
hold them and from the backfill's Parquet output before that, in the same schema, walked with cursors.

A real ``stockstream backfill`` (in-process, the session's Spark) writes both the Parquet history and,
through the materializer's planner, capped Redis views of 2,600 ticks that cross a UTC midnight; the
API (``create_app``) and ``stockstream query`` then page through them.
"""

from __future__ import annotations

import json
import logging
import math
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from processors.materialize.settings import MaterializeSettings
from processors.runtime.kafka_admin import ensure_topics
from schemas.events import Tick, encode
from stockstream.api.app import create_app
from stockstream.api.settings import ApiSettings
from stockstream.cli import app
from tests.integration.spark.compare import read_dataset
from tests.support.kafka_tools import delete_topics, produce

pytestmark = [pytest.mark.integration, pytest.mark.spark]

START = datetime(2024, 3, 9, 23, 40, tzinfo=UTC)  # the ticks cross midnight: two date partitions
COUNT = 2600
BASE = "/instruments/test/BTC-USD"


@pytest.fixture(autouse=True, scope="module")
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def ticks() -> list[Tick]:
    rng, price, found = random.Random(3), 64_000.0, []
    for index in range(COUNT):
        price *= math.exp(0.002 * math.sin(index / 11.0) + rng.gauss(0, 0.0015))
        moment = START + timedelta(seconds=index)
        found.append(Tick(symbol="BTC-USD", venue="test", price=round(price, 2), volume=round(rng.uniform(0.01, 2), 4),
                          ts_event=moment, ts_init=moment + timedelta(milliseconds=2), source="test",
                          source_id=str(index)))
    return found


@pytest.fixture(scope="module")
def backfilled(spark_session, stack, tmp_path_factory) -> Iterator[tuple[ApiSettings, Path]]:  # type: ignore[no-untyped-def]
    """One backfill for the module (Spark is the expensive part); the tests only read, but for the candle
    test, which drops the oldest candles of the views — no other test reads candles."""
    namespace = f"thist{uuid.uuid4().hex[:8]}."
    tmp_path = tmp_path_factory.mktemp("history")
    settings = MaterializeSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace,
                                   redis_url=stack.redis_url, redis_key_prefix=namespace)
    ensure_topics(settings, settings.topics().all())
    produce(stack.kafka_bootstrap, settings.topics().ticks.name, [(b"BTC-USD@test", encode(tick)) for tick in ticks()])
    output = tmp_path / "backfill"
    env = {"STOCKSTREAM_TOPIC_PREFIX": namespace, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "REDIS_URL": stack.redis_url, "SPARK_MASTER": "local[2]"}
    result = CliRunner().invoke(app, ["backfill", "--output", str(output), "--redis-prefix", namespace, "--json"],
                                env=env)
    assert result.exit_code == 0, result.output
    client = redis.Redis.from_url(stack.redis_url)
    try:
        yield ApiSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace, redis_url=stack.redis_url,
                          redis_key_prefix=namespace, history_path=output, api_auth="off"), output
    finally:
        keys = list(client.scan_iter(match=namespace + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
        client.close()
        delete_topics(stack.kafka_bootstrap, namespace)


def get(client: TestClient, path: str, **params: object) -> dict:
    answer = client.get(path, params={key: value for key, value in params.items() if value is not None})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_a_range_older_than_the_views_comes_from_the_backfill(backfilled) -> None:  # type: ignore[no-untyped-def]
    settings, output = backfilled
    parquet = read_dataset(output, "indicators")
    parquet = parquet[parquet["timeframe"] == "tick"].reset_index(drop=True)
    assert len(parquet) == COUNT
    with TestClient(create_app(settings)) as client:
        recent = get(client, f"{BASE}/indicators", timeframe="tick", limit=100)
        assert recent["source"] == "views" and len(recent["history"]) == 100 and recent["next_cursor"]
        assert recent["history"][-1]["ts_event"].startswith("2024-03-10T00:23:19")  # the last tick
        # The views keep the last 1,000 snapshots: the first 500 ticks are only in the Parquet history.
        old = get(client, f"{BASE}/indicators", timeframe="tick", limit=200,
                  **{"from": "2024-03-09T23:40:00Z", "to": "2024-03-09T23:48:20Z"})
        assert old["source"] == "history"
        assert [entry["ts_event"] for entry in old["history"]] == [
            (START + timedelta(seconds=index)).isoformat().replace("+00:00", "Z") for index in range(300, 500)]
        for entry, (_, row) in zip(old["history"], parquet.iloc[300:500].iterrows(), strict=True):
            assert entry["price"] == row["price"]
            for name, value in entry["values"].items():
                expected = row[f"i_{name}"]
                assert (value is None and (expected is None or math.isnan(expected))) or value == expected, name
        assert old["next_cursor"]  # 200 of the 500 in range: more before them
        # Inside the views: served from Redis, the same values as the backfill wrote.
        inside = get(client, f"{BASE}/indicators", timeframe="tick", limit=50,
                     **{"from": "2024-03-10T00:10:00Z", "to": "2024-03-10T00:10:50Z"})
        assert inside["source"] == "views" and len(inside["history"]) == 50
        assert [entry["values"]["sma_20"] for entry in inside["history"]] == list(parquet["i_sma_20"].iloc[1800:1850])


def test_cursor_pages_walk_the_whole_history_without_gap_or_repeat(backfilled) -> None:  # type: ignore[no-untyped-def]
    settings, _ = backfilled
    with TestClient(create_app(settings)) as client:
        seen: list[str] = []
        sources: list[str] = []
        cursor = None
        while True:
            page = get(client, f"{BASE}/indicators", timeframe="tick", limit=300, cursor=cursor)
            assert page["history"], page
            seen = [entry["ts_event"] for entry in page["history"]] + seen
            sources.append(page["source"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert len(sources) < 20
        assert seen == [(START + timedelta(seconds=index)).isoformat().replace("+00:00", "Z") for index in range(COUNT)]
        assert sources[0] == "views" and sources[-1] == "history"


def test_candles_and_signals_page_the_same_way(backfilled, stack) -> None:  # type: ignore[no-untyped-def]
    settings, output = backfilled
    candles = read_dataset(output, "candles")
    signals = read_dataset(output, "signals")
    client = redis.Redis.from_url(stack.redis_url)
    # The views lost their oldest 20 candles (a rebuild from a later time does that): history serves them.
    client.zremrangebyrank(f"{settings.redis_key_prefix}candles:BTC-USD@test:1m", 0, 19)
    client.close()
    with TestClient(create_app(settings)) as api:
        early = get(api, f"{BASE}/candles", timeframe="1m", limit=10, **{"from": "2024-03-09T23:40:00Z"},
                    to="2024-03-09T23:50:00Z")
        assert early["source"] == "history"
        assert [candle["close"] for candle in early["candles"]] == list(candles["close"].iloc[:10])
        late = get(api, f"{BASE}/candles", timeframe="1m", limit=5)
        assert late["source"] == "views" and len(late["candles"]) == 5
        walked, cursor = [], None
        while True:
            page = get(api, f"{BASE}/signals", limit=7, cursor=cursor)
            walked += [signal["signal_id"] for signal in page["signals"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # Newest first: by event time, then by id (the order of the views' and the history's key).
        newest_first = list(signals.sort_values(["ts_event", "signal_id"])["signal_id"])[::-1]
        assert walked == newest_first and len(walked) > 7


def test_query_pages_from_the_command_line(backfilled, stack) -> None:  # type: ignore[no-untyped-def]
    settings, output = backfilled
    env = {"REDIS_URL": stack.redis_url, "REDIS_KEY_PREFIX": settings.redis_key_prefix, "HISTORY_PATH": str(output),
           "STOCKSTREAM_TOPIC_PREFIX": settings.topic_prefix}
    result = CliRunner().invoke(app, ["query", "indicators", "BTC-USD@test", "-n", "5", "--from", "2024-03-09T23:40:00Z",
                                      "--to", "2024-03-09T23:40:05Z", "--json"], env=env)
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert page["source"] == "history" and len(page["history"]) == 5
    table = CliRunner().invoke(app, ["query", "indicators", "BTC-USD@test", "-n", "3", "--to", "2024-03-09T23:41:00Z"],
                               env=env)
    assert table.exit_code == 0, table.output
    assert "from the Parquet history" in table.stdout and "--cursor " in table.stdout
