"""Whether each Kafka client of a service is connected to the cluster: ``stockstream_kafka_up``.

Prometheus cannot speak Kafka, so the services say it: librdkafka calls a client's ``stats_cb``
every ``statistics.interval.ms`` (from inside ``poll()``/``consume()``, on the thread that polls)
with a JSON document whose ``brokers`` object gives each broker connection's ``state``. A client
with at least one connection in state ``UP`` reaches the cluster; one with none does not (the
broker is down, unreachable, or refuses us). Statistics that stop coming mean the client is not
polled — blocked in a call the broker does not answer (the processor's transaction commit during an
outage) — and read as 0 too. Services also report 0 while they wait for Kafka at start-up, before
any client exists. The alert ``StockstreamKafkaUnreachable``
(ops/prometheus/rules/stockstream.yml) fires on it; docs/monitoring.md has its runbook.

Callers: ingest's producer (:mod:`processors.ingest.publisher`), the processor's consumer
(:class:`processors.stream.kafka_stats.ConsumerStats`), the materializer's consumer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge

log = logging.getLogger(__name__)

KAFKA_UP = Gauge(
    "stockstream_kafka_up",
    "1 when this Kafka client had a connection to at least one broker in its latest librdkafka statistics;"
    " 0 while it has none, while its statistics are overdue (the client is blocked, e.g. in a commit the"
    " broker does not answer) or while the service waits for Kafka at start-up", ["client"])

#: librdkafka broker states (rdkafka_broker.h). Only ``UP`` can carry requests.
UP = "UP"
#: Statistics later than this many intervals (and at least ``MIN_OVERDUE_S``) mean the client is not polled.
OVERDUE_INTERVALS = 3
MIN_OVERDUE_S = 10.0


def connected_brokers(statistics: dict[str, Any]) -> int:
    """How many of the client's broker connections are ``UP`` (logical ones, like the group coordinator, excluded)."""
    brokers = statistics.get("brokers") or {}
    return sum(1 for broker in brokers.values()
               if isinstance(broker, dict) and broker.get("state") == UP and broker.get("source") != "logical")


@dataclass
class _State:
    connected: bool = True
    reported_at: float | None = None  # monotonic time of the latest report (statistics or start-up code)
    overdue_after_s: float | None = None  # None: statistics off, the last explicit report stands

    def value(self, now: float) -> float:
        if not self.connected:
            return 0.0
        if self.reported_at is not None and self.overdue_after_s is not None \
                and now - self.reported_at > self.overdue_after_s:
            return 0.0
        return 1.0


# Per gauge (weakly: a gauge that is gone takes its states along; keyed by ``id(gauge)`` a new gauge at a
# freed one's address would inherit its states and never get its callback), per client: one state.
_states: weakref.WeakKeyDictionary[Gauge, dict[str, _State]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class KafkaConnection:
    """The ``stockstream_kafka_up{client}`` gauge of one client; usable directly as a ``stats_cb``.

    ``client`` names the client within its service (``producer``, ``consumer``): the service itself is
    told apart by ``stockstream_build_info{service}``, as everywhere else. Every instance for the same
    client shares one state, so the start-up code and the client's statistics report into the same value.
    Thread-safe (librdkafka calls from the polling thread; Prometheus reads from its own).
    """

    def __init__(self, client: str, gauge: Gauge = KAFKA_UP,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._monotonic = monotonic
        with _lock:
            clients = _states.setdefault(gauge, {})
            fresh = client not in clients
            self._state = clients.setdefault(client, _State())
        if fresh:
            gauge.labels(client).set_function(lambda: self._state.value(self._monotonic()))

    def unreachable(self) -> None:
        """Kafka did not answer (start-up wait): report 0 until the client's statistics say otherwise."""
        self._report(False)

    def reachable(self) -> None:
        """Kafka answered (start-up done): report 1 until the client's statistics are due and say otherwise."""
        self._report(True)

    def observe(self, statistics: dict[str, Any]) -> None:
        """Record one parsed librdkafka statistics document."""
        self._report(connected_brokers(statistics) > 0)

    def _report(self, connected: bool) -> None:
        with _lock:
            self._state.connected = connected
            self._state.reported_at = self._monotonic()

    def __call__(self, statistics_json: str) -> None:
        try:
            statistics = json.loads(statistics_json)
        except ValueError as error:
            log.warning("unreadable librdkafka statistics: %s", error)
            return
        if isinstance(statistics, dict):
            self.observe(statistics)

    def expect_statistics(self, interval_ms: int) -> None:
        """Statistics come every ``interval_ms`` (0: never); none for a few intervals after the latest report
        (statistics or start-up code) means the client is blocked, or never got going."""
        with _lock:
            self._state.overdue_after_s = (max(MIN_OVERDUE_S, OVERDUE_INTERVALS * interval_ms / 1000)
                                           if interval_ms else None)
            self._state.reported_at = self._monotonic()

    def client_config(self, interval_ms: int) -> dict[str, Any]:
        """The librdkafka settings that make the client report here (nothing when ``interval_ms`` is 0)."""
        self.expect_statistics(interval_ms)
        if not interval_ms:
            return {}
        return {"statistics.interval.ms": interval_ms, "stats_cb": self}
