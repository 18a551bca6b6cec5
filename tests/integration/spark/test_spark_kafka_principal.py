"""``stockstream backfill --topics`` as the ``spark`` Kafka user, on the SASL listener of a private broker.

The Spark Kafka source (JAAS options built from ``KAFKA_SASL_*``), the offset-range probes and the
``*.backfill`` writes all go through SCRAM with only the ``spark`` grants; the live topics stay
out of reach (writing ``signals`` is refused). Runs in-process on the session's SparkSession.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import KafkaError, Producer
from typer.testing import CliRunner

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from schemas.topics import TopicRegistry
from stockstream.cli import app
from stockstream.kafka_access.plan import SPARK, Deployment, grants
from stockstream.stack import kafka_security
from tests.integration.spark.synthetic import produce_all, synthetic_log
from tests.support.kafka_tools import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_backfill_runs_as_the_spark_user_and_writes_only_backfill_topics(spark_session, private_stack, tmp_path):
    registry = TopicRegistry()
    ensure_topics(KafkaSettings(bootstrap_servers=private_stack.kafka_bootstrap), registry.all())
    produce_all(private_stack.kafka_bootstrap, registry.ticks.name,
                synthetic_log(("BTC-USD", "ETH-USD"), 2_000, datetime(2024, 3, 1, 5, 30, tzinfo=UTC),
                              timedelta(seconds=5)))
    environment = kafka_security.client_environment(private_stack.stack.settings, SPARK)
    result = CliRunner().invoke(app, ["backfill", "--from-offset", "0", "--no-parquet", "--topics", "--json"],
                                env={**environment, "SPARK_MASTER": "local[2]"})
    assert result.exit_code == 0, result.output
    backfilled = read_topic(private_stack.kafka_bootstrap, f"{registry.indicators.name}.backfill", timeout_s=120)
    assert len(backfilled) > 0
    assert "sasl.password" not in result.output

    # Its grants are the plan's; the live topic the notifier acts on is out of reach.
    assert not any(grant.principal == SPARK and grant.name == registry.signals.name
                   for grant in grants(Deployment.default(registry)))
    password = open(environment["KAFKA_SASL_PASSWORD_FILE"]).read().strip()  # noqa: PTH123, SIM115
    delivered: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": environment["KAFKA_BOOTSTRAP_SERVERS"],
                         "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                         "sasl.username": SPARK, "sasl.password": password, "message.timeout.ms": 15_000})
    producer.produce(registry.signals.name, b"forged", on_delivery=lambda error, _m: delivered.append(error))
    producer.flush(30)
    assert delivered and delivered[0] is not None and delivered[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
