"""Scale-out: processor instances in one consumer group split the symbols and produce what one instance does.

Two namespaces get the same log (4 symbols on 4 partitions). One instance processes the first
namespace. In the second, instance A processes a first part alone, instance B joins (the group
splits the partitions 2 + 2 and B restores their state from the changelog) and both process a
second part, then B stops and A takes every partition back (its in-memory states of B's symbols
are stale and must be reloaded from the store) and processes the rest. Per output topic and per
symbol, the records are the same, in the same order.
"""

from __future__ import annotations

import pytest
from stream_support import (
    Processor,
    group_assignment,
    make_ticks,
    outputs_by_key,
    symbols_on_distinct_partitions,
    wait_drained,
)

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from tests.support.kafka_tools import produce, read_topic, wait_until

pytestmark = pytest.mark.integration


def test_two_instances_split_the_symbols_and_match_one_instance(stack, namespaces, tmp_path):
    bootstrap = stack.kafka_bootstrap
    tag = tmp_path.name[-6:].replace("_", "")
    single, multi = namespaces(f"tso{tag}a."), namespaces(f"tso{tag}b.")
    for namespace in (single, multi):
        settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace, partitions=4)
        ensure_topics(settings, settings.topics().all())
    ticks = KafkaSettings(topic_prefix=single).topics().ticks.name, KafkaSettings(topic_prefix=multi).topics().ticks.name
    symbols = symbols_on_distinct_partitions(4, 4)
    log = make_ticks(symbols, 12_000, seed=11)
    stages = [log[:4_000], log[4_000:8_000], log[8_000:]]

    produce(bootstrap, ticks[0], log)
    alone = Processor(bootstrap, single, f"{single}g", tmp_path / "single")
    try:
        wait_drained(bootstrap, f"{single}g", ticks[0], processors=[alone])
    finally:
        alone.terminate()
    assert {r.partition for r in read_topic(bootstrap, ticks[0])} == {0, 1, 2, 3}

    group = f"{multi}g"
    a = Processor(bootstrap, multi, group, tmp_path / "a")
    b: Processor | None = None
    try:
        produce(bootstrap, ticks[1], stages[0])
        wait_drained(bootstrap, group, ticks[1], processors=[a])

        b = Processor(bootstrap, multi, group, tmp_path / "b")
        wait_until(lambda: sorted(map(len, group_assignment(bootstrap, group, ticks[1]))) == [2, 2],
                   timeout_s=120, message="the group to split 4 partitions over 2 instances")
        split = group_assignment(bootstrap, group, ticks[1])
        assert split[0].isdisjoint(split[1]) and split[0] | split[1] == {0, 1, 2, 3}
        b.wait_running()
        produce(bootstrap, ticks[1], stages[1])
        wait_drained(bootstrap, group, ticks[1], processors=[a, b])
        # Both did part of the work: each consumed the records of its own two symbols only.
        consumed = [p.metric("stockstream_process_records_consumed_total", topic=ticks[1]) for p in (a, b)]
        assert all(count > 0 for count in consumed) and sum(consumed) >= len(stages[1])

        assert b.terminate() == 0, b.output[-3000:]
        wait_until(lambda: [len(p) for p in group_assignment(bootstrap, group, ticks[1])] == [4],
                   timeout_s=120, message="instance A to take every partition back")
        produce(bootstrap, ticks[1], stages[2])
        wait_drained(bootstrap, group, ticks[1], processors=[a])
    finally:
        if b is not None:
            b.terminate()
        a.terminate()

    expected, actual = outputs_by_key(bootstrap, single), outputs_by_key(bootstrap, multi)
    assert len(expected["indicators"]) == 4 and sum(map(len, expected["indicators"].values())) > 12_000
    for topic in expected:
        assert actual[topic].keys() == expected[topic].keys(), topic
        for key in expected[topic]:
            assert actual[topic][key] == expected[topic][key], (topic, key)
