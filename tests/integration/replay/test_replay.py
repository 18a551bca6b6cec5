"""``stockstream replay`` against the real stack: a replay from offset 0 reproduces the committed outputs exactly.

A live ``stockstream process`` first processes a synthetic log (with poison, late and keyless
records) to the end; its committed outputs are the reference. Each replay appends its own
outputs to the same topics, which must equal the reference record for record: the same value
bytes for every (partition, key) in the same order (the DLQ, keyed by source and fed by every
input partition, as a multiset).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient

from processors.materialize.keys import ViewKeys
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.events import IndicatorSnapshot
from spark_jobs.backfill.ranges import offsets_at_event_time
from tests.integration.spark.synthetic import produce_all, synthetic_log
from tests.support.kafka_tools import delete_topics, end_offsets, read_topic, wait_until
from tests.support.processes import ServiceProcess, running

pytestmark = [pytest.mark.integration]
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")
RECORDS = 15_000


@dataclass
class ReplayLog:
    prefix: str
    bootstrap: str
    env: dict[str, str]
    state_dir: str
    outputs: list[str]
    dlq: str
    reference: dict[str, list[tuple[int, bytes | None, bytes | None]]]  # topic → (partition, key, value)

    @property
    def live_group(self) -> str:
        return f"{self.prefix}stockstream-process"

    def ends(self) -> dict[str, dict[int, int]]:
        return {topic: end_offsets(self.bootstrap, topic) for topic in self.outputs}

    def records_after(self, ends: dict[str, dict[int, int]]) -> dict[str, list[tuple[int, bytes | None, bytes | None]]]:
        found = {}
        for topic in self.outputs:
            found[topic] = [(r.partition, r.key, r.value) for r in _ordered(read_topic(self.bootstrap, topic))
                            if r.offset >= ends[topic].get(r.partition, 0)]
        return found


def _ordered(records):
    return sorted(records, key=lambda r: (r.partition, r.offset))


def committed(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result()
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def _caught_up(bootstrap: str, group: str, topic: str) -> bool:
    ends = end_offsets(bootstrap, topic)
    done = committed(bootstrap, group)
    return all(done.get((topic, p), 0) >= end for p, end in ends.items())


@pytest.fixture(scope="module")
def replay_log(stack, tmp_path_factory) -> Iterator[ReplayLog]:
    prefix = f"trep{uuid.uuid4().hex[:8]}."
    settings = KafkaSettings(topic_prefix=prefix, bootstrap_servers=stack.kafka_bootstrap)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    produce_all(stack.kafka_bootstrap, registry.ticks.name,
                synthetic_log(SYMBOLS, RECORDS, datetime(2024, 4, 2, 21, tzinfo=UTC), timedelta(seconds=7), seed=11))
    state_dir = str(tmp_path_factory.mktemp("process-state"))
    env = {"STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "PROCESS_STATE_DIR": state_dir, "METRICS_PORT": "0", "REDIS_URL": stack.redis_url}
    with running(["process", "--metrics-port", "0"], env) as live:
        wait_until(lambda: _caught_up(stack.kafka_bootstrap, f"{prefix}stockstream-process", registry.ticks.name)
                   or not live.alive(), timeout_s=240, message="the live processor to reach the log's end")
        assert live.alive(), live.output[-3000:]
    outputs = [registry.indicators.name, registry.signals.name, registry.aggregates_daily.name,
               *(registry.candles(tf).name for tf in registry.candle_timeframes), registry.ticks_dlq.name]
    log = ReplayLog(prefix, stack.kafka_bootstrap, env, state_dir, outputs, registry.ticks_dlq.name, {})
    log.reference = log.records_after({topic: {} for topic in outputs})
    assert len(log.reference[registry.indicators.name]) > RECORDS * 0.9
    assert log.reference[registry.ticks_dlq.name] and log.reference[registry.signals.name]
    yield log
    delete_topics(stack.kafka_bootstrap, prefix)


def _by_key(records: list[tuple[int, bytes | None, bytes | None]]) -> dict[tuple[int, bytes | None], list]:
    """Each (partition, key)'s values in log order: one symbol's events keep their order; symbols that
    share an output partition interleave as the input partitions happen to be consumed."""
    found: dict[tuple[int, bytes | None], list] = {}
    for partition, key, value in records:
        found.setdefault((partition, key), []).append(value)
    return found


def _assert_same(log: ReplayLog, replayed: dict[str, list[tuple[int, bytes | None, bytes | None]]]) -> None:
    for topic in log.outputs:
        if topic == log.dlq:  # keyed by source: fed by every input partition
            assert sorted(replayed[topic], key=repr) == sorted(log.reference[topic], key=repr), topic
        else:
            assert _by_key(replayed[topic]) == _by_key(log.reference[topic]), topic


def _replay(log: ReplayLog, *args: str, timeout_s: float = 300) -> ServiceProcess:
    process = ServiceProcess(["replay", *args], log.env)
    process.wait(timeout_s)
    process.terminate()
    return process


def test_a_plain_replay_is_a_run_and_writes_nothing_live(replay_log):
    before = replay_log.ends()
    process = _replay(replay_log, "--from-offset", "0", "--id", "plain", "--no-views")
    assert process.process.returncode == 0, process.output[-3000:]
    assert replay_log.ends() == before, "no live output topic grew"
    records = read_topic(replay_log.bootstrap, f"{replay_log.prefix}runs.plain.signals")
    same_range = _by_key([(r.partition, r.key, r.value) for r in _ordered(records)])
    assert same_range == _by_key(replay_log.reference[f"{replay_log.prefix}signals"]), "the run's own signals"


def test_replay_into_live_from_offset_zero_with_a_fresh_group_reproduces_the_committed_outputs(replay_log):
    refused = _replay(replay_log, "--from-offset", "0", "--into-live")
    assert refused.process.returncode == 2 and "--yes" in refused.output
    before = replay_log.ends()
    process = _replay(replay_log, "--from-offset", "0", "--into-live", "--yes")
    assert process.process.returncode == 0, process.output[-3000:]
    _assert_same(replay_log, replay_log.records_after(before))
    assert "replayed 15,000 ticks" in process.output
    topics = AdminClient({"bootstrap.servers": replay_log.bootstrap}).list_topics(timeout=10).topics
    assert not [name for name in topics if name.startswith(f"changelog__{replay_log.prefix}stockstream-replay-")], \
        "a fresh group's state is removed afterwards"


def test_replay_refuses_to_reset_a_running_group_or_without_confirmation(replay_log):
    refused = _replay(replay_log, "--group", replay_log.live_group)
    assert refused.process.returncode == 2 and "--yes" in refused.output
    with running(["process", "--metrics-port", "0"], replay_log.env) as live:
        wait_until(lambda: live.alive() and _members(replay_log) > 0, timeout_s=120, message="the live group to form")
        busy = _replay(replay_log, "--group", replay_log.live_group, "--yes")
    assert busy.process.returncode == 2 and "running members" in busy.output


def _members(log: ReplayLog) -> int:
    admin = AdminClient({"bootstrap.servers": log.bootstrap})
    return len(admin.describe_consumer_groups([log.live_group])[log.live_group].result().members)


def test_replay_resets_the_live_group_and_rebuilds_its_state_and_views(replay_log, stack):
    wait_until(lambda: _members(replay_log) == 0, timeout_s=60, message="the live group to be empty")
    before = replay_log.ends()
    views = f"{replay_log.prefix}v:"
    process = _replay(replay_log, "--group", replay_log.live_group, "--yes", "--views", "--views-prefix", views)
    assert process.process.returncode == 0, process.output[-3000:]
    _assert_same(replay_log, replay_log.records_after(before))
    ticks = f"{replay_log.prefix}ticks"
    assert _caught_up(replay_log.bootstrap, replay_log.live_group, ticks), "the live group resumes at the end"
    changelogs = [name for name in AdminClient({"bootstrap.servers": replay_log.bootstrap}).list_topics(
        timeout=10).topics if name.startswith(f"changelog__{replay_log.live_group}--")]
    assert changelogs and sum(end_offsets(replay_log.bootstrap, changelogs[0]).values()) > 0, "state rebuilt"

    client = redis.Redis.from_url(stack.redis_url)
    try:
        keys = ViewKeys(views)
        indicators = f"{replay_log.prefix}indicators"
        for symbol in SYMBOLS:
            last = [value for _, key, value in replay_log.reference[indicators]
                    if key == f"{symbol}@synthetic".encode() and IndicatorSnapshot.model_validate_json(value).timeframe == "tick"][-1]
            assert client.hget(keys.latest(f"{symbol}@synthetic"), "ind:tick") == last
    finally:
        for key in client.scan_iter(match=views + "*", count=1000):
            client.delete(key)
        client.close()


def test_event_time_bounds_resolve_to_the_first_tick_at_or_after_them(replay_log):
    """--from-time/--to-time: per partition, the first record (in log order) whose tick event time is ≥ T."""
    moment = datetime(2024, 4, 3, 9, 30, tzinfo=UTC)
    settings = KafkaSettings(topic_prefix=replay_log.prefix, bootstrap_servers=replay_log.bootstrap)
    found = offsets_at_event_time(settings, f"{replay_log.prefix}ticks", moment, clock_skew_us=300_000_000)
    expected: dict[int, int] = {}
    for record in _ordered(read_topic(replay_log.bootstrap, f"{replay_log.prefix}ticks")):
        try:
            at = datetime.fromisoformat(json.loads(record.value)["ts_event"])
        except ValueError:
            continue  # not a tick: passed over
        if at >= moment and record.partition not in expected:
            expected[record.partition] = record.offset
    ends = end_offsets(replay_log.bootstrap, f"{replay_log.prefix}ticks")
    assert found == {p: expected.get(p, ends[p]) for p in ends}
    assert 0 < sum(found.values()) < sum(ends.values())
