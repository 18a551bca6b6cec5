"""Bad input on ``ticks`` never stops the processor and is never dropped: it goes to the ticks DLQ.

Real broker, real ``stockstream process`` subprocess. The ticks topic gets valid ticks, then
every kind of poison a foreign producer could write (not JSON, not UTF-8, not a Tick, key ≠
symbol, no key, a tombstone), a tick later than the grace and one out of order within it, then
more valid ticks; the test checks each dead letter (reason, key = source, origin = where the
record sits in the log), that every valid tick was processed, and the metrics.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from stream_support import Processor, make_ticks, wait_drained

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from processors.stream import reasons
from schemas.events import DeadLetter, IndicatorSnapshot, Tick, encode
from tests.support.kafka_tools import produce, read_topic, wait_until

pytestmark = pytest.mark.integration


def test_poison_and_late_ticks_go_to_the_dlq_and_processing_goes_on(stack, namespaces, tmp_path):
    namespace = namespaces("tdlq" + tmp_path.name[-6:].replace("_", "") + ".")
    bootstrap = stack.kafka_bootstrap
    topics = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace).topics()
    ensure_topics(KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace), topics.all())

    first = make_ticks(["AAA-USD"], 30, seed=3)
    last_tick = Tick.model_validate_json(first[-1][1])
    later = make_ticks(["AAA-USD"], 60, seed=3)[30:]
    valid_json = json.loads(first[0][1])
    late = last_tick.model_copy(update={"ts_event": last_tick.ts_event - timedelta(minutes=10), "source_id": "late"})
    out_of_order = last_tick.model_copy(update={"ts_event": last_tick.ts_event - timedelta(milliseconds=100),
                                                "source_id": "ooo"})
    poison: list[tuple[bytes | None, bytes | None, str, str]] = [  # key, value, reason, DLQ key
        (b"AAA-USD@test", b"not json at all", reasons.MALFORMED_JSON, "unknown"),
        (b"AAA-USD@test", b"\xff\xfe{\x00", reasons.ENCODING_INVALID, "unknown"),
        (b"AAA-USD@test", json.dumps({**valid_json, "price": -5, "source": "foreign"}).encode(), reasons.TICK_INVALID,
         "foreign"),
        (b"AAA-USD@test", json.dumps({**valid_json, "surprise": 1}).encode(), reasons.TICK_INVALID, "test"),
        (b"BBB-USD@test", first[0][1], reasons.KEY_MISMATCH, "test"),
        (b"AAA-USD", first[0][1], reasons.KEY_MISMATCH, "test"),  # a v2 tick under its v1 key (the symbol)
        (b"AAA-USD@test", json.dumps({**valid_json, "schema_version": 3}).encode(), "schema_version_unsupported",
         "test"),
        (None, first[0][1], reasons.KEY_MISSING, "test"),
        (b"AAA-USD@test", None, reasons.VALUE_MISSING, "unknown"),
        (b"AAA-USD@test", encode(late), "late", "test"),
    ]
    written_after_ms = int(time.time() * 1000)
    produce(bootstrap, topics.ticks.name, first)
    for number, (key, value, _, _) in enumerate(poison):
        # The first ingested long ago (a backlog caught up, an old log replayed into live): its dead letter must
        # still be kept the DLQ's retention from now, not deleted at the broker's next retention check.
        _produce_raw(bootstrap, topics.ticks.name, key, value, OLD_RECORD_MS if number == 0 else None)
    produce(bootstrap, topics.ticks.name, [(b"AAA-USD@test", encode(out_of_order)), *later])

    processor = Processor(bootstrap, namespace, f"{namespace}g", tmp_path / "state")
    try:
        wait_drained(bootstrap, f"{namespace}g", topics.ticks.name, processors=[processor])
        ticks_log = {(r.partition, r.offset): r for r in read_topic(bootstrap, topics.ticks.name)}
        dlq_records = read_topic(bootstrap, topics.ticks_dlq.name)
        # The broker's append time (schemas/topics.py, "Dead letters"): retention counts from the refusal.
        assert all(r.timestamp_ms >= written_after_ms for r in dlq_records), [r.timestamp_ms for r in dlq_records]
        letters = [(r.key, DeadLetter.model_validate_json(r.value)) for r in dlq_records]
        assert datetime(2024, 1, 1, tzinfo=UTC) in {letter.ts_init for _, letter in letters}  # its own time, kept
        found = []
        for key, letter in letters:
            assert letter.origin is not None and letter.origin.topic == topics.ticks.name
            where = ticks_log[(letter.origin.partition, letter.origin.offset)]  # the refused record in the log
            assert letter.raw == (where.value or b"").decode("utf-8", "backslashreplace")
            assert letter.detail
            found.append((where.key, where.value, letter.reason, key.decode()))
        assert sorted(found, key=repr) == sorted(poison, key=repr)
        snapshots = [IndicatorSnapshot.model_validate_json(r.value) for r in read_topic(bootstrap, topics.indicators.name)]
        tick_snapshots = [s for s in snapshots if s.timeframe == "tick"]
        # Every valid in-order tick, before and after the poison, has its snapshot; the out-of-order one has none.
        assert [s.lineage.offset for s in tick_snapshots] == sorted(s.lineage.offset for s in tick_snapshots)
        assert len(tick_snapshots) == 60
        assert processor.alive()

        for reason in {p[2] for p in poison}:
            expected = sum(1 for p in poison if p[2] == reason)
            assert processor.metric("stockstream_process_dead_letters_total", reason=reason) == expected, reason
        assert processor.metric("stockstream_process_ticks_out_of_order_total") == 1
        assert processor.metric("stockstream_process_records_consumed_total", topic=topics.ticks.name) == \
            len(first) + len(poison) + 1 + len(later)
        assert processor.metric("stockstream_process_records_produced_total", topic=topics.ticks_dlq.name) == len(poison)
        assert processor.metric("stockstream_process_latency_seconds_count") >= 60
        assert processor.metric("stockstream_process_symbol_last_price", symbol="AAA-USD", venue="test",
                                timeframe="tick") == \
            tick_snapshots[-1].price

        def lags() -> dict[str, float]:
            return {dict(labels)["partition"]: value for (name, labels), value in processor.metrics().items()
                    if name == "stockstream_process_consumer_lag_records"}

        with urllib.request.urlopen(f"http://127.0.0.1:{processor.metrics_port}/ready", timeout=5) as ready:
            assert ready.status == 200 and json.loads(ready.read())["status"] == "ready"

        # Lag per assigned partition from librdkafka statistics (every 500 ms here): all caught up.
        wait_until(lambda: lags() == {"0": 0, "1": 0, "2": 0, "3": 0}, timeout_s=120, message="lag 0 everywhere")
        # The changelog holds the states written at checkpoints (sizes refreshed every 3 s here).
        wait_until(lambda: sum(value for (name, _), value in processor.metrics().items()
                               if name == "stockstream_process_changelog_records") >= 1,
                   timeout_s=120, message="changelog size")
    finally:
        processor.terminate()
    assert processor.service.process.returncode == 0, processor.output[-3000:]


OLD_RECORD_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def _produce_raw(bootstrap: str, topic: str, key: bytes | None, value: bytes | None,
                 timestamp_ms: int | None = None) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    if timestamp_ms is None:
        producer.produce(topic, value=value, key=key)
    else:
        producer.produce(topic, value=value, key=key, timestamp=timestamp_ms)
    assert producer.flush(30) == 0
