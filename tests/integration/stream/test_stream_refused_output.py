"""An output record the broker refuses stops the processor with no input offset of its checkpoint committed.

Real broker, real ``stockstream process`` subprocess, under each guarantee. Exactly once, the outputs
go straight to librdkafka's transactional producer (processors/stream/topology.py, ``output_producer``):
no Python callback sees a failed delivery, the transaction does; at least once, Quix's ``produce`` and
its delivery callback latch the failure. Here the ``indicators`` topic is created with a
``max.message.bytes`` smaller than any snapshot, so the first checkpoint's records are refused: the
processor must exit non-zero with the broker's reason and commit no input offset; exactly once, no
record is readable on any output topic either. Once the topic takes the records again, a restart
processes every tick: one tick snapshot per tick.
"""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from stream_support import OUTPUTS, Processor, committed_offsets, create_topic, make_ticks, wait_drained

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from tests.support.kafka_tools import produce, read_topic, wait_until

pytestmark = pytest.mark.integration


def _max_message_bytes(admin: AdminClient, topic: str, value: str) -> None:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", value, incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


@pytest.mark.parametrize("guarantee", ["exactly-once", "at-least-once"])
def test_a_refused_output_stops_the_processor_and_commits_nothing_of_its_checkpoint(stack, namespaces, tmp_path,
                                                                                    guarantee):
    namespace = namespaces("trefused" + guarantee[:2] + tmp_path.name[-6:].replace("_", "") + ".")
    bootstrap = stack.kafka_bootstrap
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace)
    topics = settings.topics()
    create_topic(bootstrap, topics.indicators.name, topics.indicators.partitions, **{"max.message.bytes": "200"})
    ensure_topics(settings, topics.all())  # the rest, as the registry declares them (indicators exists already)
    ticks = make_ticks(["AAA-USD", "BBB-USD"], 40, seed=5)
    produce(bootstrap, topics.ticks.name, ticks)

    group = f"{namespace}g"
    processor = Processor(bootstrap, namespace, group, tmp_path / "state", PROCESS_COMMIT_INTERVAL_SECONDS="0.2",
                          PROCESSING_GUARANTEE=guarantee)
    wait_until(lambda: not processor.alive(), timeout_s=180, message="the processor to stop on the refused records")
    code = processor.terminate()
    assert code != 0, processor.output[-3000:]
    said = processor.output
    assert "Message size too large" in said, said[-3000:]  # the broker's reason, as librdkafka gives it
    if guarantee == "exactly-once":
        assert "Current transaction failed" in said, said[-3000:]
    assert "stopped on an error; restart it to resume from the last checkpoint" in said, said[-3000:]
    assert sum(committed_offsets(bootstrap, group, topics.ticks.name, topics.ticks.partitions).values()) == 0
    for kind in OUTPUTS if guarantee == "exactly-once" else ["indicators"]:  # at least once, others may be written
        assert read_topic(bootstrap, f"{namespace}{kind}") == [], kind

    _max_message_bytes(AdminClient({"bootstrap.servers": bootstrap}), topics.indicators.name, "1048588")
    processor.restart()
    wait_drained(bootstrap, group, topics.ticks.name)
    processor.terminate()
    snapshots = [r for r in read_topic(bootstrap, topics.indicators.name) if b'"timeframe":"tick"' in (r.value or b"")]
    assert len(snapshots) == len(ticks)  # one tick-timeframe snapshot per tick: none lost, none repeated
