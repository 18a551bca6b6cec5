"""Kafka administration used by every service at start: reachability and idempotent topic creation."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from processors.runtime.masking import failure_reason, mask_url
from processors.runtime.settings import KafkaSettings
from schemas.topics import TopicSpec

log = logging.getLogger(__name__)


class KafkaUnavailableError(RuntimeError):
    """Kafka did not answer in time; the message says where we looked and what to do."""


class ClientLog(logging.Handler):
    """librdkafka's log lines of one client, kept instead of printed raw on stderr (``%3|…|FAIL|…``).

    A failed metadata call only says "Broker transport failure"; the client's own log line says
    what happened ("Connect to ipv4#127.0.0.1:1 failed: Connection refused"). :meth:`reason` reads
    it. Used by the probes that report a failure to a person (``wait_for_kafka``, ``doctor``).
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: deque[str] = deque(maxlen=20)
        self.logger = logging.Logger("librdkafka")  # not registered globally: one per client, collected with it
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def config(self) -> dict[str, Any]:
        return {"logger": self.logger}

    def reason(self, error: BaseException | None) -> str:
        """What failed in words: from the newest failure line of the client log, else from ``error``."""
        for line in reversed(self.lines):
            if "fail" in line.lower() or "error" in line.lower():
                reason = failure_reason(RuntimeError(line.rsplit(": ", 1)[-1] if ": " in line else line))
                if len(reason) < 60:  # a recognised cause, not an echoed raw line
                    return reason
        return failure_reason(error) if error is not None else "no brokers in metadata"


def admin_client(settings: KafkaSettings, client_log: ClientLog | None = None) -> AdminClient:
    extra = client_log.config() if client_log is not None else {}
    return AdminClient({**settings.client_config(), "socket.timeout.ms": 5000, "log_level": 3, **extra})


def count_brokers(settings: KafkaSettings, timeout_s: float = 5.0) -> int:
    """One metadata call: the number of brokers. Raises :class:`KafkaUnavailableError` saying what failed."""
    client_log = ClientLog()
    client = admin_client(settings, client_log)
    try:
        metadata = client.list_topics(timeout=timeout_s)
        if metadata.brokers:
            return len(metadata.brokers)
        reason = "no brokers in metadata"
    except KafkaException as error:
        client.poll(0)  # delivers the client's log lines to client_log
        reason = client_log.reason(error)
    raise KafkaUnavailableError(
        f"Kafka at {mask_url(settings.bootstrap_servers)} is unreachable: {reason}."
        " Start it with `stockstream stack up`, or set KAFKA_BOOTSTRAP_SERVERS.")


def wait_for_kafka(settings: KafkaSettings, timeout_s: float = 30.0) -> int:
    """Block until Kafka answers with enough brokers for our topics; returns the number of brokers.

    Enough = ``KAFKA_REPLICATION_FACTOR``: on a first start the brokers of a cluster come up one by
    one, and a topic created while fewer are up than its replication factor fails. Raises
    :class:`KafkaUnavailableError` after ``timeout_s`` (the services retry; the message says how many
    brokers answered).
    """
    client_log = ClientLog()
    client = admin_client(settings, client_log)
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    brokers = 0
    while time.monotonic() < deadline:
        try:
            metadata = client.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            brokers = len(metadata.brokers)
            if brokers >= settings.replication_factor:
                return brokers
        except KafkaException as error:
            last_error = error
        time.sleep(0.2)
    if brokers:
        raise KafkaUnavailableError(
            f"Kafka at {mask_url(settings.bootstrap_servers)} has {brokers} broker(s) up, fewer than the"
            f" {settings.replication_factor} that KAFKA_REPLICATION_FACTOR needs, after {timeout_s:.0f}s"
            " (brokers still starting, or a replication factor above the cluster size)"
        )
    client.poll(0)
    reason = client_log.reason(last_error)
    raise KafkaUnavailableError(
        f"Kafka at {mask_url(settings.bootstrap_servers)} did not answer within {timeout_s:.0f}s"
        f" ({reason}); start it with `stockstream stack up` or set KAFKA_BOOTSTRAP_SERVERS"
    )


# Errors of a topic creation that a later attempt can get past: brokers still joining (too few for
# the replication factor), a controller moving, a timeout.
RETRIABLE_CREATE_ERRORS = frozenset({
    "INVALID_REPLICATION_FACTOR", "NOT_CONTROLLER", "REQUEST_TIMED_OUT", "BROKER_NOT_AVAILABLE",
    "LEADER_NOT_AVAILABLE", "NOT_ENOUGH_REPLICAS", "_TIMED_OUT", "_TRANSPORT", "_ALL_BROKERS_DOWN",
})


def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec], timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet, with their declared config; returns those created.

    Existing topics are left as they are (a partition count is never changed silently). A creation
    that fails for a passing reason (:data:`RETRIABLE_CREATE_ERRORS`: e.g. fewer brokers up than the
    replication factor) is tried again until ``timeout_s``, then raises :class:`KafkaUnavailableError`
    (which the services' start-up loops retry); any other error raises ``KafkaException`` at once.
    """
    client = admin_client(settings)
    deadline = time.monotonic() + timeout_s
    specs = list(specs)
    created: list[str] = []
    delay = 0.2
    while True:
        existing = set(client.list_topics(timeout=max(1.0, deadline - time.monotonic())).topics)
        wanted = [spec for spec in specs if spec.name not in existing]
        if not wanted:
            break
        retry = _create(client, settings, wanted, max(1.0, deadline - time.monotonic()), created)
        if not retry:
            break
        if time.monotonic() + delay > deadline:
            raise KafkaUnavailableError(
                f"could not create {', '.join(sorted(retry))} within {timeout_s:.0f}s"
                f" ({'; '.join(sorted(set(retry.values())))})"
            )
        log.warning("topic creation failed for a passing reason (%s); retrying in %.1fs",
                    "; ".join(sorted(set(retry.values()))), delay)
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
    if created:
        log.info("created topics: %s", ", ".join(sorted(created)))
    wait_until_visible(client, {spec.name: spec.partitions for spec in specs},
                       max(1.0, deadline - time.monotonic()))
    return created


def _create(client: AdminClient, settings: KafkaSettings, wanted: list[TopicSpec], timeout_s: float,
            created: list[str]) -> dict[str, str]:
    """One creation request; appends what it created; returns {topic: reason} to try again."""
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
    retry: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as error:
            code = error.args[0] if error.args else None
            code_name = getattr(code, "name", lambda: "")()
            # Another service created it between our listing and our request: fine.
            if code_name == "TOPIC_ALREADY_EXISTS":
                continue
            if code_name in RETRIABLE_CREATE_ERRORS or getattr(code, "retriable", lambda: False)():
                detail = code.str() if hasattr(code, "str") else str(error)
                retry[name] = f"{code_name}: {detail}"
                continue
            raise
    return retry


def wait_until_visible(client: AdminClient, partitions: dict[str, int], timeout_s: float) -> None:
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


def topic_id(settings: KafkaSettings, name: str, timeout_s: float = 10.0) -> str:
    """The id Kafka gave topic ``name`` (a topic deleted and created again gets a new one); raises if unknown."""
    client = admin_client(settings)
    futures = client.describe_topics(TopicCollection([name]), request_timeout=timeout_s)
    return str(futures[name].result(timeout=timeout_s).topic_id)
