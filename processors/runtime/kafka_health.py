"""Whether each Kafka client of a service is connected to the cluster: ``stockstream_kafka_up``.

Prometheus cannot speak Kafka, so the services say it: librdkafka calls a client's ``stats_cb``
every ``statistics.interval.ms`` (from inside ``poll()``/``consume()``, on the thread that polls)
with a JSON document whose ``brokers`` object gives each broker connection's ``state``. A client
with at least one connection in state ``UP`` reaches the cluster; one with none does not (the
broker is down, unreachable, or refuses us). Services also report 0 while they wait for Kafka at
start-up, before any client exists. The alert ``StockstreamKafkaUnreachable``
(ops/prometheus/rules/stockstream.yml) fires on it; docs/monitoring.md has its runbook.

Callers: ingest's producer (:mod:`processors.ingest.publisher`), the processor's consumer
(:class:`processors.stream.kafka_stats.ConsumerStats`), the materializer's consumer.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from prometheus_client import Gauge

log = logging.getLogger(__name__)

KAFKA_UP = Gauge(
    "stockstream_kafka_up",
    "1 when this Kafka client has a connection to at least one broker (librdkafka statistics), 0 while it has"
    " none or while the service waits for Kafka at start-up", ["client"])

#: librdkafka broker states (rdkafka_broker.h). Only ``UP`` can carry requests.
UP = "UP"


def connected_brokers(statistics: dict[str, Any]) -> int:
    """How many of the client's broker connections are ``UP`` (logical ones, like the group coordinator, excluded)."""
    brokers = statistics.get("brokers") or {}
    return sum(1 for broker in brokers.values()
               if isinstance(broker, dict) and broker.get("state") == UP and broker.get("source") != "logical")


class KafkaConnection:
    """The ``stockstream_kafka_up{client}`` gauge of one client; usable directly as a ``stats_cb``.

    ``client`` names the client within its service (``producer``, ``consumer``): the service itself is
    told apart by ``stockstream_build_info{service}``, as everywhere else.
    """

    def __init__(self, client: str, gauge: Gauge = KAFKA_UP) -> None:
        self.client = client
        self._child = gauge.labels(client)

    def unreachable(self) -> None:
        """Kafka did not answer (start-up wait, admin call that timed out): report 0 until statistics say otherwise."""
        self._child.set(0)

    def reachable(self) -> None:
        self._child.set(1)

    def observe(self, statistics: dict[str, Any]) -> None:
        """Set the gauge from one parsed librdkafka statistics document."""
        self._child.set(1 if connected_brokers(statistics) else 0)

    def __call__(self, statistics_json: str) -> None:
        try:
            statistics = json.loads(statistics_json)
        except ValueError as error:
            log.warning("unreadable librdkafka statistics: %s", error)
            return
        if isinstance(statistics, dict):
            self.observe(statistics)

    def client_config(self, interval_ms: int) -> dict[str, Any]:
        """The librdkafka settings that make the client report here (nothing when ``interval_ms`` is 0)."""
        if not interval_ms:
            return {}
        return {"statistics.interval.ms": interval_ms, "stats_cb": self}
