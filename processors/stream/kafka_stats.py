"""Consumer lag per input partition and changelog size per store partition, for Prometheus.

Lag: Quix passes a ``stats_cb`` from ``consumer_extra_config`` through to librdkafka, which
calls it every ``statistics.interval.ms`` from inside ``poll()`` (so on the processing thread)
with a JSON document. librdkafka's own ``consumer_lag`` is useless here: under exactly-once the
offsets are committed by the producer's transaction, which the consumer's statistics never see
(``committed_offset`` stays -1001). :class:`ConsumerStats` therefore reports the *position* lag:
last stable offset − the next offset this instance will read (falling back to the committed
offset before anything was read), for the partitions assigned to it; revoked ones are dropped.

Changelog size: the changelog partitions are assigned but paused (read only during recovery),
so their statistics carry no offsets. :class:`ChangelogSizes` asks the broker for their
watermarks every ``interval_s`` on a thread of its own and reports high − low (records kept,
before compaction removes superseded ones) for the changelog partitions assigned here.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from processors.runtime.kafka_health import KafkaConnection
from processors.stream.metrics import ProcessMetrics

log = logging.getLogger(__name__)

INVALID = -1001  # librdkafka's "no offset"
CHANGELOG_PREFIX = "changelog__"


def position_lag(partition: dict[str, Any]) -> int | None:
    """Records from this consumer's position to the partition's last stable offset, if known."""
    end = partition.get("ls_offset", INVALID)
    if not isinstance(end, int) or end < 0:
        end = partition.get("hi_offset", INVALID)
    if not isinstance(end, int) or end < 0:
        return None
    for name in ("app_offset", "committed_offset"):
        position = partition.get(name, INVALID)
        if isinstance(position, int) and position >= 0:
            return max(0, end - position)
    if partition.get("lo_offset") == end:
        return 0  # an empty partition: nothing to read
    return None


class ConsumerStats:
    """The ``stats_cb`` of the processor's consumer: lag per partition, and whether it reaches a broker."""

    def __init__(self, metrics: ProcessMetrics, input_topics: Iterable[str],
                 connection: KafkaConnection | None = None) -> None:
        self.metrics = metrics
        self.input_topics = frozenset(input_topics)
        self.connection = connection or KafkaConnection("consumer")
        self._shown: set[tuple[str, str]] = set()
        self.lags: dict[tuple[str, int], int] = {}
        self.changelog_partitions: set[tuple[str, int]] = set()  # assigned to this instance

    def __call__(self, stats_json: str) -> None:
        try:
            stats = json.loads(stats_json)
            self.connection.observe(stats)
            self._read(stats)
        except (ValueError, TypeError, AttributeError) as error:
            log.warning("unreadable librdkafka statistics: %s", error)
            return
        shown = set()
        for (topic, partition), lag in self.lags.items():
            labels = (topic, str(partition))
            self.metrics.consumer_lag.labels(*labels).set(lag)
            shown.add(labels)
        for labels in self._shown - shown:
            self.metrics.consumer_lag.remove(*labels)
        self._shown = shown

    def _read(self, stats: dict[str, Any]) -> None:
        lags: dict[tuple[str, int], int] = {}
        changelogs: set[tuple[str, int]] = set()
        for topic, entry in (stats.get("topics") or {}).items():
            for key, partition in (entry.get("partitions") or {}).items():
                number = int(key)
                if number < 0 or not partition.get("desired", False):
                    continue  # the internal "UA" partition, or not assigned to this instance
                if topic in self.input_topics:
                    lag = position_lag(partition)
                    if lag is not None:
                        lags[(topic, number)] = lag
                elif topic.startswith(CHANGELOG_PREFIX):
                    changelogs.add((topic, number))
        self.lags = lags
        self.changelog_partitions = changelogs


class ChangelogSizes:
    """Every ``interval_s``, the size of the changelog partitions assigned here (own thread)."""

    def __init__(self, metrics: ProcessMetrics, stats: ConsumerStats, client_config: dict[str, str],
                 interval_s: float = 30.0) -> None:
        self.metrics = metrics
        self.stats = stats
        self.client_config = client_config
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="changelog-sizes", daemon=True)
        self._shown: set[str] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        consumer = Consumer({**self.client_config, "group.id": f"stockstream-sizes-{uuid.uuid4().hex}",
                             "enable.auto.commit": False, "log_level": 3})
        try:
            while not self._stop.wait(self.interval_s):
                self.refresh(consumer)
        finally:
            consumer.close()

    def refresh(self, consumer: Consumer) -> None:
        shown = set()
        for topic, partition in sorted(self.stats.changelog_partitions):
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)
            except KafkaException as error:
                log.debug("changelog watermarks of %s[%d]: %s", topic, partition, error)
                continue
            self.metrics.changelog_records.labels(str(partition)).set(max(0, high - low))
            shown.add(str(partition))
        for gone in self._shown - shown:
            self.metrics.changelog_records.remove(gone)
        self._shown = shown
