"""``stockstream_kafka_up`` from librdkafka statistics: connected brokers, overdue statistics, start-up reports."""

from __future__ import annotations

import gc
import json

from prometheus_client import CollectorRegistry, Gauge

from processors.runtime.kafka_health import KafkaConnection, connected_brokers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def statistics(*states: str, logical_up: bool = False) -> dict:
    brokers = {f"127.0.0.1:9092/{index}": {"nodeid": index, "source": "learned", "state": state}
               for index, state in enumerate(states)}
    brokers["GroupCoordinator"] = {"nodeid": -1, "source": "logical", "state": "UP" if logical_up else "INIT"}
    return {"name": "rdkafka#consumer-1", "type": "consumer", "brokers": brokers}


def gauge_value(registry: CollectorRegistry, client: str) -> float | None:
    return registry.get_sample_value("stockstream_kafka_up", {"client": client})


def new_gauge() -> tuple[CollectorRegistry, Gauge]:
    registry = CollectorRegistry()
    return registry, Gauge("stockstream_kafka_up", "1 when test", ["client"], registry=registry)


def test_connected_brokers_counts_real_connections_in_state_up():
    assert connected_brokers(statistics("UP", "DOWN")) == 1
    assert connected_brokers(statistics("DOWN", "CONNECT", "TRY_CONNECT")) == 0
    assert connected_brokers(statistics("DOWN", logical_up=True)) == 0  # the coordinator is not a connection
    assert connected_brokers({}) == 0


def test_statistics_drive_the_gauge_and_overdue_statistics_read_as_unreachable():
    registry, gauge = new_gauge()
    clock = Clock()
    connection = KafkaConnection("consumer", gauge, clock)
    config = connection.client_config(1000)
    assert config["statistics.interval.ms"] == 1000 and config["stats_cb"] is connection
    assert gauge_value(registry, "consumer") == 1  # nothing known yet: not an outage
    connection(json.dumps(statistics("UP")))
    assert gauge_value(registry, "consumer") == 1
    connection(json.dumps(statistics("DOWN")))
    assert gauge_value(registry, "consumer") == 0
    connection(json.dumps(statistics("UP")))
    clock.now += 9.9  # three intervals, but at least 10 s
    assert gauge_value(registry, "consumer") == 1
    clock.now += 0.2  # the client stopped polling (blocked on the broker)
    assert gauge_value(registry, "consumer") == 0
    connection(json.dumps(statistics("UP")))
    assert gauge_value(registry, "consumer") == 1


def test_start_up_reports_share_the_state_of_the_client_reporting_later():
    registry, gauge = new_gauge()
    clock = Clock()
    KafkaConnection("producer", gauge, clock).unreachable()
    assert gauge_value(registry, "producer") == 0
    KafkaConnection("producer", gauge, clock).reachable()
    client = KafkaConnection("producer", gauge, clock)
    assert gauge_value(registry, "producer") == 1
    client.client_config(5000)
    clock.now += 15  # statistics due every 5 s: none for three intervals yet
    assert gauge_value(registry, "producer") == 1
    clock.now += 0.1  # the client never got going (blocked before its first poll)
    assert gauge_value(registry, "producer") == 0
    client(json.dumps(statistics("UP")))
    assert gauge_value(registry, "producer") == 1
    client(json.dumps(statistics("DOWN")))
    assert gauge_value(registry, "producer") == 0


def test_statistics_off_never_go_overdue_and_bad_documents_change_nothing():
    registry, gauge = new_gauge()
    clock = Clock()
    connection = KafkaConnection("consumer", gauge, clock)
    assert connection.client_config(0) == {}
    connection(json.dumps(statistics("UP")))
    clock.now += 3600
    assert gauge_value(registry, "consumer") == 1
    connection("{not json")
    connection("[1, 2]")
    assert gauge_value(registry, "consumer") == 1


def test_a_new_gauge_at_a_freed_gauges_address_gets_its_own_state():
    """States were keyed by ``id(gauge)``: a gauge made where a collected one lived inherited its state and
    never got its callback (seen as a flaky test depending on what ran before).

    ``gc.freeze()`` first: each ``gc.collect()`` then scans only the objects made here, not everything the
    session loaded before (2.7 s a collection after the integration tests, 135 s for this test in ``make test``).
    """
    gc.freeze()
    try:
        for _ in range(50):
            registry, gauge = new_gauge()
            KafkaConnection("consumer", gauge, Clock())
            del registry, gauge
            gc.collect()
            registry, gauge = new_gauge()  # often at the collected one's address (CPython's allocator)
            connection = KafkaConnection("consumer", gauge, Clock())
            connection(json.dumps(statistics("UP")))
            assert gauge_value(registry, "consumer") == 1
            connection(json.dumps(statistics("DOWN")))
            assert gauge_value(registry, "consumer") == 0
    finally:
        gc.unfreeze()
