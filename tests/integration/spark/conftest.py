"""Fixtures of the Spark tests: one SparkSession (local[2]) and one synthetic log for the whole run.

Spark start-up costs ~5-20 s here, so the session is shared; the log (120 000 records over
four symbols and almost seven days of event time, see :mod:`synthetic`) is produced once into
its own namespace and its in-process reference run computed once. A real ``stockstream
process`` starts on the log right away and runs while the Spark tests do; the live-parity test
waits for it to reach the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient

from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs
from processors.runtime.kafka_admin import ensure_topics
from schemas.events import Candle, DailySummary, DeadLetter, IndicatorSnapshot, Signal
from spark_jobs.session import StartedSession, build_session
from spark_jobs.settings import SparkJobSettings
from tests.integration.spark.synthetic import Reference, produce_all, reference_events, synthetic_log
from tests.support.kafka_tools import Record, delete_topics, read_topic, wait_until
from tests.support.processes import ServiceProcess

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD")
LOG_RECORDS = 120_000
LOG_START = datetime(2024, 3, 1, 5, 30, tzinfo=UTC)
LOG_STEP = timedelta(seconds=5)  # 20 s between ticks of one symbol; ~6.9 days in all


@dataclass(frozen=True)
class SparkLog:
    prefix: str
    bootstrap: str
    records: list[Record]
    reference: Reference
    live: ServiceProcess  # `stockstream process` over the same log, started as soon as it is written
    redis_url: str  # the stack's Redis (not the default address: the stack may run on other ports)

    def settings(self, **overrides: object) -> SparkJobSettings:
        return SparkJobSettings(topic_prefix=self.prefix, bootstrap_servers=self.bootstrap,
                                redis_url=self.redis_url, spark_master="local[2]", **overrides)

    def ends(self) -> dict[int, int]:
        found: dict[int, int] = {}
        for record in self.records:
            found[record.partition] = max(found.get(record.partition, 0), record.offset + 1)
        return found


@dataclass(frozen=True)
class RedisPrefix:
    client: redis.Redis
    prefix: str


@pytest.fixture
def redis_prefix(stack, namespace) -> Iterator[RedisPrefix]:
    """A fresh Redis key prefix for one test; its keys are deleted afterwards."""
    client = redis.Redis.from_url(stack.redis_url)
    yield RedisPrefix(client, namespace)
    keys = list(client.scan_iter(match=namespace + "*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])
    client.close()


@pytest.fixture(scope="session")
def spark_session() -> Iterator[StartedSession]:
    session = build_session(SparkJobSettings(spark_master="local[2]", spark_driver_memory="2g"), "stockstream-tests")
    yield session
    session.spark.stop()


@pytest.fixture(scope="session")
def spark_log(stack, tmp_path_factory) -> Iterator[SparkLog]:
    prefix = f"tspark{uuid.uuid4().hex[:8]}."
    settings = SparkJobSettings(topic_prefix=prefix, bootstrap_servers=stack.kafka_bootstrap)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    produce_all(stack.kafka_bootstrap, registry.ticks.name, synthetic_log(SYMBOLS, LOG_RECORDS, LOG_START, LOG_STEP))
    records = read_topic(stack.kafka_bootstrap, registry.ticks.name, timeout_s=120)
    assert len(records) == LOG_RECORDS
    live = ServiceProcess(["process", "--metrics-port", "0"], {
        "STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "PROCESS_STATE_DIR": str(tmp_path_factory.mktemp("live-state")),
        # what the backfill writes: no forming candles, a running summary per closed smallest candle
        "LIVE_UPDATE_INTERVAL": "0"})
    configs = PipelineConfigs(DEFAULT_STRATEGY, candle_timeframes=settings.candle_timeframes,
                              grace_ms=settings.grace_ms)
    try:
        yield SparkLog(prefix, stack.kafka_bootstrap, records,
                       reference_events(records, configs, given_stream_time=True), live, stack.redis_url)
    finally:
        live.terminate()
        delete_topics(stack.kafka_bootstrap, prefix)


def _live_caught_up(log: SparkLog) -> bool:
    topic = f"{log.prefix}ticks"
    group = f"{log.prefix}stockstream-process"
    admin = AdminClient({"bootstrap.servers": log.bootstrap})
    found = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result()
    done = {tp.partition: tp.offset for tp in found.topic_partitions if tp.topic == topic}
    return all(done.get(p, -1) >= end for p, end in log.ends().items())


@pytest.fixture(scope="session")
def live_outputs(spark_log) -> Reference:
    """What the live processor committed to its output topics for the whole log, as reference events
    (``seq`` = the output offset: the emission order within a kind)."""
    wait_until(lambda: _live_caught_up(spark_log) or not spark_log.live.alive(), timeout_s=900,
               message="stockstream process to reach the end of the log")
    assert spark_log.live.alive(), spark_log.live.output[-3000:]
    registry = spark_log.settings().topics()
    reference = Reference()
    for kind, topic, model in (("indicators", registry.indicators.name, IndicatorSnapshot),
                               ("signals", registry.signals.name, Signal),
                               ("daily", registry.aggregates_daily.name, DailySummary),
                               ("candles", registry.candles("1m").name, Candle),
                               ("dead_letters", registry.ticks_dlq.name, DeadLetter)):
        for record in read_topic(spark_log.bootstrap, topic, timeout_s=300):
            event = model.model_validate_json(record.value)
            lineage = event.origin if isinstance(event, DeadLetter) else event.lineage
            getattr(reference, kind).append((lineage.partition, lineage.offset, record.offset, event))
    return reference
