"""The ``runs`` topic as a registry: publish a run, read every run, probe the broker's clock, follow changes.

Used by every process that creates, lists or obeys runs: the CLI (replay, backfill, runs,
strategy), the stream processor (which run serves live; its own run's record), the
materializer (a run's metadata for its views). The topic is compacted, one partition, with
broker-assigned timestamps (``schemas/topics.py``); a record's value is a
:class:`schemas.runs.Run`, a dropped run is a tombstone. A record that does not decode is skipped
with a warning (never fatal: an old reader meets a newer release's record as
``schema_version_unsupported``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import ValidationError

from processors.core.rollout import LiveView, effective
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from processors.runtime.watermarks import watermarks
from schemas.events import encode
from schemas.runs import LIVE_RUN_ID, Run
from schemas.upcasters import UnsupportedSchemaVersionError, decode_run

log = logging.getLogger(__name__)

PROBE_KEY = b"probe"
"""Key of the records a process appends to learn the broker's time (tombstones: compaction drops them)."""


class RunLogError(RuntimeError):
    """The runs topic could not be read or written; the message says what failed."""


@dataclass(frozen=True)
class RunRecord:
    """A run as last recorded, with its record's broker timestamp and offset."""

    run: Run
    timestamp: datetime
    offset: int


def _timestamp(message: Message) -> datetime:
    _kind, milliseconds = message.timestamp()
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


@dataclass
class RunSnapshot:
    """Every run of the topic up to an offset: the latest record per key (tombstones remove it)."""

    runs: dict[str, RunRecord]
    end: int  # the next offset after what was read
    latest: datetime | None = None  # the newest broker timestamp read (probes included)

    @property
    def live(self) -> RunRecord | None:
        return self.runs.get(LIVE_RUN_ID)

    def live_view(self) -> LiveView | None:
        """Who serves live as of what was read (``processors/core/rollout.py``); None without a ``live`` record."""
        record = self.live
        if record is None or record.run.live is None:
            return None
        return effective(record.run.live, record.timestamp, self.latest)

    def get(self, run_id: str) -> RunRecord | None:
        return self.runs.get(run_id)

    def apply(self, message: Message) -> bool:
        """Fold one record in; True when it changed a run (a probe or an undecodable record does not)."""
        self.end = message.offset() + 1
        self.latest = _timestamp(message)
        key = message.key()
        if key is None or key == PROBE_KEY:
            return False
        run_id = key.decode("utf-8", errors="replace")
        value = message.value()
        if value is None:
            return self.runs.pop(run_id, None) is not None
        try:
            run = decode_run(value)
        except (ValidationError, UnsupportedSchemaVersionError) as error:
            log.warning("runs record %r at offset %d skipped: %s", run_id, message.offset(), error)
            return False
        if run.run_id != run_id:
            log.warning("runs record at offset %d skipped: key %r holds run %r", message.offset(), run_id, run.run_id)
            return False
        self.runs[run_id] = RunRecord(run, _timestamp(message), message.offset())
        return True


class RunLog:
    """Reads and writes the ``runs`` topic of one deployment (``settings.topics().runs``)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.spec = settings.topics().live().runs
        self.topic = self.spec.name
        self._producer: Producer | None = None

    def ensure(self) -> None:
        ensure_topics(self.settings, [self.spec])

    def _consumer(self) -> Consumer:
        return Consumer({**self.settings.client_config(), "group.id": "stockstream-runs-reader",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "enable.partition.eof": False, "log_level": 3})

    def read(self, timeout_s: float = 30.0) -> RunSnapshot:
        """Every run, read to the end of the topic as it is now. Raises :class:`RunLogError`."""
        consumer = self._consumer()
        try:
            partition = TopicPartition(self.topic, 0)
            try:
                found = consumer.list_topics(self.topic, timeout=timeout_s).topics.get(self.topic)
                if found is None or found.error is not None or not found.partitions:
                    return RunSnapshot({}, 0)  # no run made yet in this deployment
                _low, high = watermarks(consumer, partition, timeout_s)
            except KafkaException as error:
                raise RunLogError(f"cannot read the runs topic {self.topic!r}: {error}") from None
            snapshot = RunSnapshot({}, 0)
            if high <= 0:
                return snapshot
            consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
            deadline = time.monotonic() + timeout_s
            while snapshot.end < high:
                if time.monotonic() > deadline:
                    raise RunLogError(f"the runs topic {self.topic!r} was not read to its end within {timeout_s:.0f}s")
                for message in consumer.consume(500, timeout=0.5):
                    if message.error() is None:
                        snapshot.apply(message)
            return snapshot
        finally:
            consumer.close()

    def _produce(self, key: bytes, value: bytes | None, timeout_s: float) -> tuple[int, datetime]:
        if self._producer is None:
            self._producer = Producer({**self.settings.client_config(), "enable.idempotence": True,
                                       "linger.ms": 0, "log_level": 3})
        delivered: list[tuple[KafkaError | None, Message]] = []
        self._producer.produce(self.topic, key=key, value=value,
                               on_delivery=lambda error, message: delivered.append((error, message)))
        self._producer.flush(timeout_s)
        if not delivered:
            raise RunLogError(f"the runs record {key!r} was not acknowledged within {timeout_s:.0f}s")
        error, message = delivered[0]
        if error is not None:
            raise RunLogError(f"the runs record {key!r} was refused: {error}")
        return message.offset(), _timestamp(message)

    def publish(self, run: Run, timeout_s: float = 30.0) -> tuple[int, datetime]:
        """Append ``run``'s record; its offset and broker timestamp. Raises :class:`RunLogError`."""
        return self._produce(run.run_id.encode(), encode(run), timeout_s)

    def remove(self, run_id: str, timeout_s: float = 30.0) -> None:
        """Append a tombstone: the run is no longer listed (its record goes at the next compaction)."""
        self._produce(run_id.encode(), None, timeout_s)

    def probe(self, timeout_s: float = 30.0) -> tuple[int, datetime]:
        """Append a probe record: the broker's time now, as the log orders it (offset, timestamp)."""
        return self._produce(PROBE_KEY, None, timeout_s)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None


class RunWatcher:
    """Follows the runs topic in a thread; calls ``on_change(snapshot)`` after each record that changed a run.

    The snapshot is shared and only grows; ``wait_for(offset)`` blocks until the watcher has read
    past an offset (e.g. a probe it appended). Stops with :meth:`close`.
    """

    def __init__(self, log_: RunLog, on_change: Callable[[RunSnapshot], None] | None = None) -> None:
        self.log = log_
        self.on_change = on_change
        self.snapshot = RunSnapshot({}, 0)
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._consumer = log_._consumer()
        self._consumer.assign([TopicPartition(log_.topic, 0, OFFSET_BEGINNING)])
        self.error: Exception | None = None
        self._watermarks: Consumer | None = None  # sync() asks it, off the watcher thread's consumer
        self._thread = threading.Thread(target=self._run, name="runs-watcher", daemon=True)

    def start(self, timeout_s: float = 60.0) -> RunSnapshot:
        """Read the topic to its current end, then follow it in the background; returns the snapshot."""
        _low, high = watermarks(self._consumer, TopicPartition(self.log.topic, 0), timeout_s)
        deadline = time.monotonic() + timeout_s
        while self.snapshot.end < high:
            if time.monotonic() > deadline:
                raise RunLogError(f"the runs topic {self.log.topic!r} was not read to its end within {timeout_s:.0f}s")
            self._poll(0.5)
        self._thread.start()
        return self.snapshot

    def _poll(self, timeout_s: float) -> bool:
        changed = False
        for message in self._consumer.consume(200, timeout=timeout_s):
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                continue
            changed = self.snapshot.apply(message) or changed
            with self.changed:
                self.changed.notify_all()
        return changed

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._poll(0.2) and self.on_change is not None:
                    self.on_change(self.snapshot)
        except Exception as error:  # noqa: BLE001 - reported to the owner, which decides
            log.exception("the runs watcher stopped")
            self.error = error
            with self.changed:
                self.changed.notify_all()

    def wait_for(self, offset: int, timeout_s: float) -> bool:
        """Block until the watcher has read the record at ``offset``; False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while self.snapshot.end <= offset and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.5))
        return self.snapshot.end > offset

    def sync(self, timeout_s: float) -> bool:
        """Block until the watcher has read the topic to its end as it is now; False after ``timeout_s``."""
        _low, high = watermarks(self._probe_consumer(), TopicPartition(self.log.topic, 0), timeout_s)
        return high <= 0 or self.wait_for(high - 1, timeout_s)

    def _probe_consumer(self) -> Consumer:
        if self._watermarks is None:
            self._watermarks = self.log._consumer()
        return self._watermarks

    def wait_change(self, timeout_s: float) -> None:
        with self.changed:
            self.changed.wait(timeout_s)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._consumer.close()
        if self._watermarks is not None:
            self._watermarks.close()


def read_topic_values(settings: KafkaSettings, topic: str, timeout_s: float = 120.0) -> list[bytes]:
    """Every committed value of ``topic`` (all partitions, each in log order) appended up to now.

    Used by ``runs diff`` to read two runs' signals. A topic that does not exist reads as empty.
    The end is each partition's high watermark now, not a read_committed reader's end (the last
    stable offset): a transaction committed a moment ago may not have its markers on the
    partitions yet (``tests/support/kafka_tools.wait_settled`` measured how often), and a run's last
    checkpoint must not be left out. So it reads until every partition's position reaches that
    end, which waits for a transaction still open there to be decided.
    Raises :class:`RunLogError` when the end is not reached within ``timeout_s``.
    """
    config = {**settings.client_config(), "group.id": "stockstream-runs-reader", "enable.auto.commit": False,
              "log_level": 3}
    consumer = Consumer({**config, "isolation.level": "read_committed"})
    appended = Consumer({**config, "isolation.level": "read_uncommitted"})  # its high watermark: every record
    try:
        found = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if found is None or found.error is not None:
            return []
        ends = {}
        for partition in found.partitions:
            _low, high = watermarks(appended, TopicPartition(topic, partition), 30)
            if high > 0:
                ends[partition] = high
        if not ends:
            return []
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(ends)])
        values: list[bytes] = []
        open_partitions = set(ends)
        deadline = time.monotonic() + timeout_s
        while open_partitions:
            if time.monotonic() > deadline:
                raise RunLogError(f"topic {topic!r} was not read to its end within {timeout_s:.0f}s"
                                  " (a transaction still open there holds it back?)")
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is not None:
                    continue
                value = message.value()
                if value is not None and message.offset() < ends[message.partition()]:
                    values.append(value)
            for partition in list(open_partitions):
                # The last offsets may be transaction markers, never delivered: compare positions.
                if consumer.position([TopicPartition(topic, partition)])[0].offset >= ends[partition]:
                    open_partitions.discard(partition)
        return values
    finally:
        consumer.close()
        appended.close()
