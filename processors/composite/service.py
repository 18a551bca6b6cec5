"""The process of ``stockstream composite``: one Quix app, exactly-once, re-keyed by symbol.

Topology::

    ticks ──read (decode, keep composite symbols)──group_by symbol (repartition topic)──
        step (state "default": the symbol's venues) ──► ticks (key SYMBOL@index, venue "index")

The composite ticks go back into ``ticks``: the stream processor then computes indicators,
candles, signals and daily summaries for ``SYMBOL@index`` like for any instrument, and they are
part of the log (a replay reads them as facts; the composite stage skips them as inputs).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from quixstreams import Application
from quixstreams.kafka import ConnectionConfig

from processors.composite.settings import CompositeSettings
from processors.composite.stage import CompositeStage, composite_key
from processors.runtime.kafka_admin import KafkaUnavailableError, ensure_topics, wait_for_kafka
from processors.runtime.observability import HEALTH, register_secret, setup_logging, start_metrics_server
from processors.runtime.quix_topics import register_with_changelog

log = logging.getLogger("processors.composite")
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def build_app(settings: CompositeSettings) -> Application:
    """The Quix application (topics must exist; Quix creates the repartition topic and the changelog)."""
    stage = CompositeStage(settings.symbols, settings.stale_us)
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(settings.client_config()),
        consumer_group=settings.group_id, auto_offset_reset=settings.auto_offset_reset,  # type: ignore[arg-type]
        processing_guarantee="exactly-once", state_dir=settings.state_dir, loglevel=None,
        auto_create_topics=True, use_changelog_topics=True,
        # Under the group's prefix (Quix would draw a bare UUID): the principal's ACLs cover only that.
        producer_extra_config={"transactional.id": f"{settings.group_id}-{uuid.uuid4().hex}"},
    )
    name = settings.topics().ticks.name
    ticks = app.topic(name, key_deserializer="bytes", value_deserializer="bytes")
    output = app.topic(name, key_serializer="bytes", value_serializer="bytes")
    sdf = app.dataframe(ticks)
    sdf = sdf.apply(stage.read).filter(lambda item: item is not None)
    source = sdf
    # Quix creates the repartition and changelog topics here; each is looked for until the broker lists it.
    sdf = register_with_changelog(lambda: source.group_by(lambda item: item["symbol"], name="composite-symbol",
                                                          key_serializer="str", key_deserializer="str"))
    grouped = sdf
    sdf = register_with_changelog(lambda: grouped.apply(stage.step, stateful=True))
    sdf = sdf.filter(lambda value: value is not None)
    sdf.to_topic(output, key=composite_key)
    return app


def main(settings: CompositeSettings, stopping: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    if settings.sasl_password is not None:
        register_secret(settings.sasl_password.get_secret_value())
    setup_logging(settings.log_level, "composite")
    if not settings.symbols:
        log.error("COMPOSITE_SYMBOLS names no symbol: nothing to compute")
        return EXIT_CONFIG
    try:
        start_metrics_server(settings.metrics_host, settings.metrics_port, "composite")
    except OSError as error:
        log.error("cannot serve /metrics on %s:%d (%s); set METRICS_PORT (0 disables it)",
                  settings.metrics_host, settings.metrics_port, error)
        return EXIT_CONFIG
    stopping = stopping or threading.Event()
    while not stopping.is_set():
        try:
            wait_for_kafka(settings, timeout_s=10)
            ensure_topics(settings, [settings.topics().ticks])
            break
        except KafkaUnavailableError as error:
            log.warning("%s; retrying", error)
            time.sleep(1)
    app = build_app(settings)
    log.info("composite index of %s (stale after %gs) from %s (group %s)", ",".join(settings.symbols),
             settings.stale_s, settings.topics().ticks.name, settings.group_id)
    HEALTH.mark_ready()
    try:
        app.run()
    except Exception as error:
        HEALTH.fail(f"{type(error).__name__}: {error}")
        log.exception("the composite stage stopped on an error; restart it to resume from the last checkpoint")
        return EXIT_FAILED
    return EXIT_OK
