"""``backfill``, ``backtest`` and ``sweep`` as the ``spark`` Kafka user, on the SASL listener.

The Spark Kafka source (JAAS options built from ``KAFKA_SASL_*``), the offset-range probes and the
``*.backfill`` writes all go through SCRAM with only the ``spark`` grants of a namespace of the
test's own (set and removed through the operator's door); the live topics stay out of reach
(writing ``signals`` or the live ``indicators`` is refused). Runs in-process on the session's
SparkSession.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.topics import TopicRegistry
from stockstream.cli import app
from stockstream.kafka_access.plan import PRINCIPAL_OF_COMMAND, SPARK, Deployment, grants, may
from stockstream.stack import kafka_security
from tests.integration.spark.synthetic import produce_all, synthetic_log
from tests.support.kafka_acls import own_acls
from tests.support.kafka_tools import delete_topics, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.spark]


@pytest.fixture
def spark_namespace(sasl_stack, namespace) -> Iterator[Deployment]:
    """A namespace with the plan's ACLs, its topics, and 2,000 ticks of two instruments."""
    plan = Deployment.default(TopicRegistry(prefix=namespace))
    admin = AdminClient({"bootstrap.servers": sasl_stack.kafka_bootstrap})
    with own_acls(admin, grants(plan)):
        try:
            ensure_topics(KafkaSettings(bootstrap_servers=sasl_stack.kafka_bootstrap, topic_prefix=namespace),
                          plan.topics.all())
            produce_all(sasl_stack.kafka_bootstrap, plan.topics.ticks.name,
                        synthetic_log(("BTC-USD", "ETH-USD"), 2_000, datetime(2024, 3, 1, 5, 30, tzinfo=UTC),
                                      timedelta(seconds=5)))
            yield plan
        finally:
            delete_topics(sasl_stack.kafka_bootstrap, namespace)


def spark_environment(sasl_stack, prefix: str) -> dict[str, str]:
    return {**kafka_security.client_environment(sasl_stack.stack.settings, SPARK),
            "STOCKSTREAM_TOPIC_PREFIX": prefix, "SPARK_MASTER": "local[2]"}


def assert_spark_may_not_write(environment: dict[str, str], plan: Deployment, topic: str) -> None:
    assert not may(grants(plan), SPARK, "WRITE", "topic", topic)
    password = Path(environment["KAFKA_SASL_PASSWORD_FILE"]).read_text().strip()
    delivered: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": environment["KAFKA_BOOTSTRAP_SERVERS"],
                         "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                         "sasl.username": SPARK, "sasl.password": password, "message.timeout.ms": 15_000,
                         "log_level": 0})
    producer.produce(topic, b"forged", on_delivery=lambda error, _m: delivered.append(error))
    producer.flush(30)
    assert delivered and delivered[0] is not None, topic
    assert delivered[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (topic, delivered[0])


def test_backfill_runs_as_the_spark_user_and_writes_only_backfill_topics(spark_session, sasl_stack, spark_namespace):
    assert PRINCIPAL_OF_COMMAND["backfill"] == SPARK
    registry = spark_namespace.topics
    environment = spark_environment(sasl_stack, spark_namespace.topics.prefix)
    result = CliRunner().invoke(app, ["backfill", "--from-offset", "0", "--no-parquet", "--topics", "--json"],
                                env=environment)
    assert result.exit_code == 0, result.output
    backfilled = read_topic(sasl_stack.kafka_bootstrap, f"{registry.indicators.name}.backfill", timeout_s=120)
    assert len(backfilled) > 0
    assert "sasl.password" not in result.output
    # The live topics the notifier and the views act on are out of reach.
    for topic in (registry.signals.name, registry.indicators.name, registry.ticks.name):
        assert_spark_may_not_write(environment, spark_namespace, topic)


def test_backtest_of_a_log_range_runs_as_the_spark_user(spark_session, sasl_stack, spark_namespace, tmp_path):
    """``backtest --from`` backfills the range first (range probes, the Spark Kafka source) as ``spark``."""
    assert PRINCIPAL_OF_COMMAND["backtest"] == SPARK
    result = CliRunner().invoke(app, ["backtest", "--from", "0", "--trades", str(tmp_path / "trades.csv"),
                                      "--plot", str(tmp_path / "equity.png"), "--json"],
                                env=spark_environment(sasl_stack, spark_namespace.topics.prefix))
    assert result.exit_code == 0, result.output
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    instruments = ("BTC-USD@synthetic", "ETH-USD@synthetic")
    assert set(instruments) <= set(report)  # one backtest per instrument (and the portfolio)
    assert all(report[instrument]["buy_and_hold"]["trades"] == 1 for instrument in instruments)
    assert (tmp_path / "trades.csv").exists() and (tmp_path / "equity.png").exists()


def test_sweep_runs_as_the_spark_user_without_kafka(spark_session, sasl_stack, namespace, tmp_path):
    """``sweep`` reads a file of bars and writes Parquet: under ``spark`` it needs no Kafka grant at all."""
    assert PRINCIPAL_OF_COMMAND["sweep"] == SPARK
    bars = tmp_path / "bars.csv"
    start = datetime(2024, 3, 1, tzinfo=UTC)
    with bars.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "open", "close"])
        for index in range(600):
            price = 100 + 10 * ((index // 40) % 2) + (index % 40) * 0.25 * (1 if (index // 40) % 2 else -1)
            writer.writerow([(start + timedelta(minutes=index)).isoformat(), price, price + 0.1])
    result = CliRunner().invoke(app, ["sweep", "--input", str(bars), "--grid", "fast=2..4, slow=8..10",
                                      "--output", str(tmp_path / "sweep"), "--json"],
                                env=spark_environment(sasl_stack, namespace))
    assert result.exit_code == 0, result.output
    assert any((tmp_path / "sweep").rglob("*.parquet"))
