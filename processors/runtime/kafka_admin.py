"""Kafka administration used by every service at start: reachability and idempotent topic creation."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from processors.runtime.settings import KafkaSettings
from schemas.topics import TopicSpec

log = logging.getLogger(__name__)


class KafkaUnavailableError(RuntimeError):
    """Kafka did not answer in time; the message says where we looked and what to do."""


def admin_client(settings: KafkaSettings) -> AdminClient:
    return AdminClient({**settings.client_config(), "socket.timeout.ms": 5000, "log_level": 3})


def wait_for_kafka(settings: KafkaSettings, timeout_s: float = 30.0) -> int:
    """Block until a metadata call succeeds; returns the number of brokers.

    Raises :class:`KafkaUnavailableError` after ``timeout_s``.
    """
    client = admin_client(settings)
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            metadata = client.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if metadata.brokers:
                return len(metadata.brokers)
        except KafkaException as error:
            last_error = error
        time.sleep(0.2)
    raise KafkaUnavailableError(
        f"Kafka at {settings.bootstrap_servers} did not answer within {timeout_s:.0f}s"
        f" ({last_error or 'no brokers in metadata'}); start it with `stockstream stack up`"
        " or set KAFKA_BOOTSTRAP_SERVERS"
    )


def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec], timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet, with their declared config; returns those created.

    Existing topics are left as they are (a partition count is never changed silently).
    """
    client = admin_client(settings)
    existing = set(client.list_topics(timeout=timeout_s).topics)
    wanted = [spec for spec in specs if spec.name not in existing]
    if not wanted:
        return []
    futures = client.create_topics(
        [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=settings.replication_factor,
                config=spec.config(),
            )
            for spec in wanted
        ],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as error:
            # Another service created it between our listing and our request: fine.
            if error.args and getattr(error.args[0], "name", lambda: "")() == "TOPIC_ALREADY_EXISTS":
                continue
            raise
    if created:
        log.info("created topics: %s", ", ".join(sorted(created)))
    _wait_until_visible(client, {spec.name: spec.partitions for spec in wanted}, timeout_s)
    return created


def _wait_until_visible(client: AdminClient, partitions: dict[str, int], timeout_s: float) -> None:
    """Return once the broker's metadata shows every topic with all its partitions led.

    Creation is acknowledged by the controller before brokers serve the new metadata; a consumer
    that subscribes in that gap is assigned only the topics it can see (a materializer got 4 of its
    20 partitions and kept them until the next rebalance). Raises KafkaException after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        topics = client.list_topics(timeout=max(1.0, deadline - time.monotonic())).topics
        missing = [name for name, count in partitions.items()
                   if name not in topics or topics[name].error is not None
                   or len(topics[name].partitions) < count
                   or any(p.leader < 0 for p in topics[name].partitions.values())]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise KafkaException(f"topics created but not visible after {timeout_s:.0f}s: {', '.join(missing)}")
        time.sleep(0.05)
