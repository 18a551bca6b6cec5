"""The Quix Streams application of ``stockstream process``: topics, the named state store, the dataframe.

Topology (one sub-topology, keyed by symbol)::

    ticks (bytes) ──update(TickHandler, state "pipeline")──► Emission* ──produce──► indicators | signals |
                                                                             candles.<tf> | aggregates.daily |
                                                                             ticks.dlq

Every topic of the registry is created by :func:`processors.runtime.kafka_admin.ensure_topics` before
this module runs, so Quix only looks them up; the one topic Quix creates is the store's
changelog (``changelog__<group>--<ticks>--pipeline``, compacted, as many partitions as
``ticks``).

Quix's stateful ``apply`` always uses a store called ``default``; STYLE.md #3 wants an explicit
name (a renamed store silently loses its state), so the store is registered here as
``pipeline`` and the handler gets that store's transaction the way Quix's own stateful wrapper
does (``checkpoint.get_store_transaction(...)``, then ``as_state(prefix=key)``). Symbol states
are written back once per checkpoint by :class:`~processors.stream.states.SymbolStates`,
registered with the sink manager so that ``Checkpoint.commit`` flushes it before it produces
the changelog and commits.

Each emission is produced once, to its own topic, through the processing context's producer:
the one ``to_topic`` uses (``StreamingDataFrame._produce`` → ``InternalProducer.produce_row``),
whose transaction every checkpoint begins and commits, so outputs stay inside the exactly-once
transaction. Calling its ``produce`` directly skips what ``expand`` + ``to_topic`` add per output
record and does nothing else differently: same topic, key, value bytes, the input record's
timestamp and headers (as ``to_topic`` passes them). Under exactly-once :func:`output_producer`
goes one step further, to that producer's librdkafka handle (see there for why a failed delivery
still fails the checkpoint). Not ``app.get_producer()``: that is a separate, non-transactional producer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quixstreams import Application, message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.internal_producer import InternalProducer
from quixstreams.kafka import ConnectionConfig
from quixstreams.models import TopicManager
from quixstreams.state.rocksdb import RocksDBOptions

from processors.core.rollout import Duty
from processors.core.strategy import PipelineConfigs, Strategy
from processors.runtime.quix_topics import register_with_changelog
from processors.runtime.rocksdb import small_state_options
from processors.stream.handler import OutputTopics, TickHandler
from processors.stream.kafka_stats import ConsumerStats
from processors.stream.metrics import ProcessMetrics
from processors.stream.settings import ProcessSettings
from processors.stream.states import SymbolStates
from schemas.topics import TopicRegistry

STORE_NAME = "pipeline"


class DutyChangedError(RuntimeError):
    """Raised before the first record when the live record no longer gives the duty the app was built for."""


@dataclass
class Processor:
    """The assembled application; :meth:`run` blocks until SIGTERM/SIGINT or ``app.stop()``."""

    app: Application
    handler: TickHandler
    states: SymbolStates
    stats: ConsumerStats
    dataframe: StreamingDataFrame
    ticks_topic: str

    def run(self) -> None:
        self.app.run()


def pipeline_configs(settings: ProcessSettings, strategy: Strategy) -> PipelineConfigs:
    """The per-symbol pipeline configs: the strategy's indicators/rules, the deployment's timeframes."""
    return PipelineConfigs(strategy, candle_timeframes=settings.candle_timeframes, grace_ms=settings.grace_ms,
                           horizons_ms=settings.horizons_ms, fee=settings.scorecard_fee,
                           live_update_ms=settings.live_update_ms)


def rocksdb_options(settings: ProcessSettings) -> RocksDBOptions:
    """Small write buffers and block cache for the small per-symbol state (see the settings)."""
    return small_state_options(settings.rocksdb_write_buffer_mb, settings.rocksdb_block_cache_mb)


def live_names(own: TopicRegistry, live: TopicRegistry) -> dict[str, str]:
    """Each output topic of ``own`` → the live topic of the same kind (the switch of a promoted run)."""
    pairs = zip(own.run_outputs(), live.run_outputs(), strict=True)
    return {mine.name: theirs.name for mine, theirs in pairs}


def build_processor(settings: ProcessSettings, strategy: Strategy, metrics: ProcessMetrics,
                    now: Callable[[], float] | None = None, duty: Duty | None = None,
                    registry: TopicRegistry | None = None, still: Callable[[], bool] | None = None) -> Processor:
    """Wire the application (topics must exist already). Talks to Kafka to look the topics up.

    ``duty`` (``processors/stream/control.py``) routes outputs: records at or after its switch go
    to the live topics, earlier ones to ``registry`` (the run's own; default the settings' topics).
    ``still`` is asked once, before the first record: False raises :class:`DutyChangedError` (the
    checkpoint is aborted, nothing of it is committed).
    """
    registry = registry or settings.topics()
    ticks_name = registry.ticks.name
    stats = ConsumerStats(metrics, [ticks_name])
    consumer_config: dict[str, Any] = {"session.timeout.ms": settings.session_timeout_ms,
                                       "heartbeat.interval.ms": max(500, settings.session_timeout_ms // 5)}
    if settings.instance_id:
        consumer_config["group.instance.id"] = settings.instance_id
    stats.connection.expect_statistics(settings.stats_interval_ms)
    if settings.stats_interval_ms:
        consumer_config |= {"statistics.interval.ms": settings.stats_interval_ms, "stats_cb": stats}
    producer_config: dict[str, Any] = {"linger.ms": settings.linger_ms}
    if settings.processing_guarantee == "exactly-once":
        producer_config["transaction.timeout.ms"] = settings.transaction_timeout_ms
        # Quix would draw a bare UUID; under the group's prefix it is covered by the principal's ACLs.
        producer_config["transactional.id"] = settings.transactional_id or f"{settings.group_id}-{uuid.uuid4().hex}"
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(settings.client_config()),
        consumer_group=settings.group_id,
        auto_offset_reset=settings.auto_offset_reset,
        commit_interval=settings.commit_interval,
        commit_every=settings.commit_every,
        consumer_poll_timeout=settings.poll_timeout,  # bounds how late a due checkpoint is committed
        processing_guarantee=settings.processing_guarantee,
        state_dir=settings.state_dir,
        consumer_extra_config=consumer_config,
        producer_extra_config=producer_config,
        loglevel=None,  # our logging set-up (secret masking) handles quixstreams' records
        auto_create_topics=True,  # only the changelog is created: ensure_topics made the rest
        use_changelog_topics=True,
        rocksdb_options=rocksdb_options(settings),
    )
    ticks = app.topic(ticks_name, key_deserializer="bytes", value_deserializer="bytes")

    def output(name: str) -> Any:
        # Looked up (and checked) by Quix; only their names are used: values are produced pre-encoded.
        return app.topic(name, key_serializer="bytes", value_serializer="bytes")

    outputs = OutputTopics(
        indicators=output(registry.indicators.name),
        signals=output(registry.signals.name),
        candles={tf: output(registry.candles(tf).name) for tf in settings.candle_timeframes},
        aggregates_daily=output(registry.aggregates_daily.name),
        outcomes=output(registry.signal_outcomes.name),
        dead_letters=output(registry.ticks_dlq.name),
    )
    states = SymbolStates(pipeline_configs(settings, strategy), metrics, cold_start=settings.cold_start,
                          policy=settings.instrument_policy())
    handler = TickHandler(states, outputs, metrics, **({"now": now} if now is not None else {}))

    sdf = app.dataframe(ticks)
    context = sdf.processing_context
    stream_id = sdf.stream_id
    # Creates the changelog topic if it is new; looked for until the broker lists it (processors/runtime/quix_topics.py).
    register_with_changelog(lambda: context.state_manager.register_store(
        stream_id=stream_id, store_name=STORE_NAME, changelog_config=TopicManager.derive_topic_config([ticks]),
    ))
    # What ``sdf.sink()`` does, minus the per-record ``add``: checkpoints flush the states.
    context.sink_manager.register(states)

    produce = output_producer(context.producer, exactly_once=settings.processing_guarantee == "exactly-once")
    emit_from = settings.emit_offsets
    # Only a run with a switch (a promoted shadow) sends some records' outputs elsewhere than its own topics.
    routed = duty is not None and duty.live_from is not None and registry.run_id is not None
    switch = duty if routed else None
    to_live = live_names(registry, registry.live()) if routed else {}
    for name in to_live.values():
        output(name)

    unchecked = [still] if still is not None else []

    def process(value: bytes | None, key: bytes | None, timestamp: int, headers: Any) -> None:
        if unchecked and not unchecked.pop()():
            raise DutyChangedError("the live record changed this processor's duty before it processed anything")
        where = message_context()
        transaction = context.checkpoint.get_store_transaction(
            stream_id=stream_id, partition=where.partition, store_name=STORE_NAME)
        emissions = handler.handle(value, key, timestamp, transaction, where.topic, where.partition, where.offset)
        if emit_from is not None and where.offset < emit_from.get(where.partition, 0):
            return  # warm-up (PROCESS_EMIT_FROM): the state moves on, nothing is produced
        live = switch is not None and switch.writes_live(where.partition, where.offset)
        for emission in emissions:
            name = to_live[emission.topic.name] if live else emission.topic.name
            # to_topic would pass the input's headers (None → [], i.e. none) and timestamp along.
            produce(topic=name, value=emission.value, key=emission.key, headers=headers or None,
                    timestamp=timestamp)

    sdf = sdf.update(process, metadata=True)
    return Processor(app, handler, states, stats, sdf, ticks_name)


def output_producer(producer: InternalProducer, exactly_once: bool) -> Callable[..., None]:
    """How each emission is produced: ``producer.produce(topic=, value=, key=, headers=, timestamp=)``.

    ``producer`` is the processing context's (every checkpoint begins and commits its transaction).
    At least once, its own ``produce`` is used: its delivery callback latches a failed delivery,
    which the checkpoint raises before it commits the offsets. Exactly once, the record goes to the
    same librdkafka producer directly, without the wrappers Quix adds per record (a check for a
    latched error, the kwargs clean-up, a ``poll(0)`` and a Python delivery callback that only
    notes the offset, which Quix reads for changelog topics alone): there, a record that fails
    delivery makes the transaction abortable, so the checkpoint's commit fails and neither the
    outputs nor the input offsets of that checkpoint are committed (librdkafka's
    ``rd_kafka_commit_transaction``). Delivery reports of the changelog (still produced by Quix)
    are served by the checkpoint's flush; a full local queue (``BufferError``) falls back to Quix's
    ``produce``, which polls and retries.
    """
    if not exactly_once:
        return producer.produce
    wrapped = producer.produce
    inner: list[Any] = []  # librdkafka's producer, created lazily by Quix (its first transaction), then kept

    def produce(topic: str, value: bytes, key: bytes, headers: Any, timestamp: int) -> None:
        if not inner:
            inner.append(producer._producer._producer)  # noqa: SLF001 - Quix keeps no public handle to it
        try:
            if headers:
                inner[0].produce(topic, value, key, timestamp=timestamp, headers=headers)
            else:
                inner[0].produce(topic, value, key, timestamp=timestamp)
        except BufferError:
            wrapped(topic=topic, value=value, key=key, headers=headers, timestamp=timestamp)

    return produce
