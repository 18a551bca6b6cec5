"""The materializer service (``stockstream materialize``): Kafka → Redis views, at least once, idempotent.

Why a plain confluent-kafka consumer rather than a Quix Streams Application here: the
materializer keeps no state of its own (the views *are* the state, guarded by log offsets),
so Quix's state stores and exactly-once producer add nothing, while this service needs
exactly what a bare consumer gives directly — one Redis pipeline per consumed batch across
all six input topics, offsets committed only after that pipeline (and the dead letters)
succeeded, the batch held in memory and retried while Redis is down with the partitions
paused (so the group keeps us and nothing is re-read or skipped), and the same loop reused by
``views rebuild`` with assigned start offsets and no group at all.

Loop: consume up to ``MATERIALIZE_BATCH_MAX`` records → plan (pure) → write to Redis (one
pipeline) → produce dead letters → commit the offsets after the last record of each
partition (asynchronously; until the broker confirms them they are committed again whenever the
group is idle, so a refused or lost commit never leaves the group short of what it wrote). Redis or
Kafka failures never lose the place: the batch is retried with capped
exponential backoff; records arriving meanwhile (only from newly assigned partitions, the
others are paused) join the held batch; a revoked partition's records are dropped from it
(the new owner re-reads them from the committed offset).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from processors.materialize import metrics
from processors.materialize.admission import ViewAdmission
from processors.materialize.planner import BatchPlanner, InputRecord, ViewBatch
from processors.materialize.progress import ProgressGuard, progress_mapping
from processors.materialize.settings import MaterializeSettings, redis_client
from processors.materialize.store import ViewStore
from processors.runtime.kafka_admin import KafkaUnavailableError, ensure_topics, wait_for_kafka
from processors.runtime.kafka_health import KafkaConnection
from processors.runtime.masking import failure_reason
from processors.runtime.observability import HEALTH
from schemas.events import encode

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_record(message: Message) -> InputRecord:
    return InputRecord(message.topic(), message.partition(), message.offset(), message.key(), message.value())


def next_offsets(records: list[InputRecord]) -> list[TopicPartition]:
    """The offsets to commit after ``records``: last offset + 1 per topic-partition."""
    last: dict[tuple[str, int], int] = {}
    for record in records:
        where = (record.topic, record.partition)
        last[where] = max(last.get(where, -1), record.offset)
    return [TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in sorted(last.items())]


class DeadLetterSink:
    """Produces dead letters to ``views.dlq`` and waits for delivery (raises ``KafkaException`` if not delivered)."""

    def __init__(self, settings: MaterializeSettings) -> None:
        self.topic = settings.dead_letter_topic().name
        self.producer = Producer({**settings.client_config(), "enable.idempotence": True, "linger.ms": 5,
                                  "log_level": 3})

    def send(self, batch: ViewBatch, timeout_s: float = 30.0) -> None:
        if not batch.dead_letters:
            return
        failures: list[str] = []

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failures.append(str(error))

        for letter in batch.dead_letters:
            self.producer.produce(self.topic, key=letter.source.encode(), value=encode(letter), on_delivery=on_delivery)
        remaining = self.producer.flush(timeout_s)
        if remaining or failures:
            raise KafkaException(f"{remaining} dead letters undelivered, errors: {failures[:3]}")
        for letter in batch.dead_letters:
            metrics.DEAD_LETTERS.labels(letter.reason).inc()
            log.warning("dead letter %s at %s: %s", letter.reason, letter.origin, letter.detail)


class Materializer:
    """One materializer instance (a member of the consumer group). ``run`` blocks until ``stop`` is set."""

    def __init__(self, settings: MaterializeSettings, *, now: Callable[[], datetime] = utc_now,
                 stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self.topics = settings.input_topics()
        self.admission = ViewAdmission(settings.instrument_policy())
        self.planner = BatchPlanner(settings.view_keys(), self.topics, settings.caps(), now, self.admission)
        self._admission_seeded = False
        self.redis = redis_client(settings, settings.redis_socket_timeout_s)
        self.store = ViewStore(self.redis, settings.view_keys())
        self.progress = ProgressGuard(self.redis, settings.view_prefix)
        self.dead_letters = DeadLetterSink(settings)
        self.connection = KafkaConnection("consumer")
        # Offsets committed (asynchronously) and not yet confirmed by the broker, per topic-partition. An
        # asynchronous commit that fails is not retried by the client: while the group is idle, the last
        # ones are committed again, so a caller waiting for the group to reach the end (``runs start``)
        # is never left short by a lost commit.
        self._unconfirmed: dict[tuple[str, int], int] = {}
        self._again_at = 0.0  # monotonic time of the next commit again; its wait doubles up to a minute
        self._again_wait = 1.0
        self.consumer = self._consumer()
        self._revoked: set[tuple[str, int]] = set()
        self.batches = 0
        self.records_done = 0  # records written (events + dead letters) since start: cheap progress for callers

    def _consumer(self) -> Consumer:
        config = {
            **self.settings.client_config(),
            "group.id": self.settings.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",  # processors write with transactions: skip aborted ones
            "log_level": 3,
            "on_commit": self._on_commit,
            **self.connection.client_config(self.settings.statistics_interval_ms),
        }
        if self.settings.instance_id:
            config["group.instance.id"] = self.settings.instance_id
        return Consumer(config)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._revoked.update((tp.topic, tp.partition) for tp in partitions)
        self.progress.forget((tp.topic, tp.partition) for tp in partitions)
        for tp in partitions:  # the next owner commits from where it reads
            self._unconfirmed.pop((tp.topic, tp.partition), None)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The broker's answer to a commit (served by ``consume``): confirmed offsets are done, failures said."""
        if error is not None:
            log.warning("offset commit failed (committed again when idle): %s", error)
            return
        for tp in partitions:
            where = (tp.topic, tp.partition)
            if tp.error is not None:
                log.warning("offset commit of %s[%d] failed (committed again when idle): %s", tp.topic, tp.partition,
                            tp.error)
            elif self._unconfirmed.get(where) == tp.offset:
                del self._unconfirmed[where]
        if not self._unconfirmed:
            self._again_at, self._again_wait = 0.0, 1.0

    def _commit_again(self) -> None:
        """Commit the offsets not confirmed yet (the group is idle: nothing newer will be committed soon).

        At most every second at first, then less often while they still fail (up to once a minute)."""
        now = time.monotonic()
        if now < self._again_at:
            return
        self._again_at = now + self._again_wait
        self._again_wait = min(60.0, self._again_wait * 2)
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in self._unconfirmed.items()
                   if (topic, partition) not in self._revoked]
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as error:
            log.warning("offset commit failed: %s", error)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._revoked.difference_update((tp.topic, tp.partition) for tp in partitions)
        log.info("assigned %d partitions", len(partitions))

    def _ensure_topics(self) -> bool:
        """Wait for Kafka (as many brokers as the replication factor) and create the topics.

        Retried until it works or the service is stopped (then False): on a first start the
        brokers come up one by one, and a start-up that gave up would only crash-loop.
        """
        inputs = set(self.topics.names)
        specs = [spec for spec in self.settings.topics().all() if spec.name in inputs]
        while not self.stop.is_set():
            try:
                wait_for_kafka(self.settings, timeout_s=10)
                ensure_topics(self.settings, [*specs, self.settings.dead_letter_topic()])
                HEALTH.clear("kafka")
                self.connection.reachable()  # from now on librdkafka's statistics keep it current
                return True
            except KafkaUnavailableError as error:
                HEALTH.problem("kafka", "Kafka not ready at start-up")
                self.connection.unreachable()
                log.warning("%s; retrying", error)
                self.stop.wait(1.0)
        return False

    def run(self) -> None:
        """Create the topics if needed, subscribe, and materialize until stopped."""
        if not self._ensure_topics():
            self.consumer.close()
            self.redis.close()
            return
        self.consumer.subscribe(self.topics.names, on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("materializing %s into Redis prefix %r (group %s)", ", ".join(self.topics.names),
                 self.settings.view_prefix, self.settings.group_id)
        HEALTH.mark_ready()
        try:
            while not self.stop.is_set():
                records = self._consume(self.settings.batch_timeout_s)
                if records:
                    self.process(records)
                elif self._unconfirmed:
                    self._commit_again()
        finally:
            self.consumer.close()
            self.redis.close()

    def _consume(self, timeout_s: float) -> list[InputRecord]:
        records = []
        for message in self.consumer.consume(self.settings.batch_max_records, timeout=timeout_s):
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("consumer error: %s", error)
                continue
            records.append(to_record(message))
        return records

    def process(self, records: list[InputRecord]) -> bool:
        """Write ``records`` to the views, retrying until done; commit their offsets. False if stopped first."""
        held = records
        attempt = 0
        paused: list[TopicPartition] = []
        while True:
            held = [r for r in held if (r.topic, r.partition) not in self._revoked]
            if not held:
                break
            try:
                started = time.perf_counter()
                held = self._rewind_lost_writes(held)
                if not held:
                    break
                if not self._admission_seeded:  # the instruments the views hold stay admitted
                    self.admission.seed(self.redis.smembers(self.settings.view_keys().instruments))
                    self._admission_seeded = True
                batch = self.planner.plan(held)
                result = self.store.apply(batch, progress=progress_mapping(held))
                self.progress.wrote(held)
                self.dead_letters.send(batch)
                metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            except (redis.RedisError, KafkaException, OSError) as error:
                attempt += 1
                if isinstance(error, redis.RedisError | OSError):
                    metrics.REDIS_ERRORS.inc()
                    metrics.REDIS_UP.set(0)
                HEALTH.problem("views_write", f"batch not written: {failure_reason(error)}")
                backoff = min(self.settings.retry_max_backoff_s, 0.1 * 2 ** min(attempt, 10))
                log.warning("batch of %d records not written (attempt %d: %s: %s); retrying in %.1fs",
                            len(held), attempt, type(error).__name__, error, backoff)
                if not paused:
                    paused = list(self.consumer.assignment())
                    self.consumer.pause(paused)
                # Keep serving the group (heartbeats, rebalances) while waiting; paused partitions yield nothing.
                deadline = time.monotonic() + backoff
                while time.monotonic() < deadline and not self.stop.is_set():
                    held = held + self._consume(min(0.2, max(0.01, deadline - time.monotonic())))
                if self.stop.is_set():
                    return False
                continue
            metrics.REDIS_UP.set(1)
            HEALTH.clear("views_write")
            if attempt:
                log.info("batch written after %d retries", attempt)
            self._account(batch, result.written, result.stale, result.published)
            try:
                offsets = next_offsets(held)
                self._unconfirmed.update({(tp.topic, tp.partition): tp.offset for tp in offsets})
                self.consumer.commit(offsets=offsets, asynchronous=True)
            except KafkaException as error:
                # The views already hold these records; a lost commit only means a harmless re-read.
                log.warning("offset commit failed: %s", error)
            break
        if paused:
            self.consumer.resume(self.consumer.assignment())
        return True

    def _rewind_lost_writes(self, held: list[InputRecord]) -> list[InputRecord]:
        """Seek back the partitions for which Redis lost acknowledged writes; the rest of ``held`` to write."""
        rewind = self.progress.lost(held)
        for (topic, partition), offset in rewind.items():
            log.warning("Redis lost view writes of %s[%d] (its progress is at offset %d): re-reading from there",
                        topic, partition, offset)
            metrics.REWINDS.inc()
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as error:
                # Not seekable now (e.g. being revoked): its next owner starts from Redis's progress check.
                log.warning("seek of %s[%d] to %d failed: %s", topic, partition, offset, error)
        return [record for record in held if (record.topic, record.partition) not in rewind]

    def _account(self, batch: ViewBatch, written: int, stale: int, published: int) -> None:
        self.batches += 1
        self.records_done += batch.records
        for label, count in batch.events_by_topic.items():
            metrics.EVENTS.labels(label).inc(count)
        metrics.WRITES.labels("written").inc(written)
        metrics.WRITES.labels("stale").inc(stale)
        metrics.LIVE_PUBLISHED.inc(published)
        metrics.BATCH_RECORDS.observe(batch.records)
