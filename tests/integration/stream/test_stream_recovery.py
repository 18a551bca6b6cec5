"""Recovery: ``kill -9`` of the processor at random points of a 100k-tick run, restarts (some with the
local state folder deleted, so state comes back from the changelog) and the committed output is
exactly that of an uninterrupted run — no duplicate, no gap, same order per symbol.

Two namespaces get the same log (100k ticks over 20 symbols and 4 partitions, with a few poison
records and late ticks so the DLQ is covered too). One processor drains the first without
interruption. In the second, a processor is killed with SIGKILL whenever the committed progress
passes one of a few seeded random fractions, once more a seeded moment after a restart (while it
restores state), and restarted each time; every other restart starts from an empty state folder.
The outputs are read with ``isolation.level=read_committed`` and compared per topic and key.
"""

from __future__ import annotations

import random
import shutil
import time

import pytest
from stream_support import (
    Processor,
    committed_offsets,
    make_ticks,
    outputs_by_key,
    produce_many,
    wait_drained,
)

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from tests.support.kafka_tools import end_offsets, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TICKS = 100_000
SEED = 20260302


def progress(bootstrap: str, group: str, topic: str, total: int) -> float:
    return sum(committed_offsets(bootstrap, group, topic, 4).values()) / total


def by_origin_partition(letters: list) -> dict[int, list]:
    """Dead letters grouped by the input partition they came from, each group in log order."""
    grouped: dict[int, list] = {}
    for letter in letters:
        grouped.setdefault(letter["origin"]["partition"], []).append(letter)
    return grouped


def with_poison(log: list[tuple[bytes, bytes]], rng: random.Random) -> list[tuple[bytes | None, bytes]]:
    records: list[tuple[bytes | None, bytes]] = list(log)
    for index, position in enumerate(sorted(rng.sample(range(10_000, len(log)), 12), reverse=True)):
        key, value = log[position]
        # Malformed, an invalid price, or the same symbol's tick from 100 s before (its 1m window is closed).
        poison = [b"{not json", value.replace(b'"price":', b'"price":-'), log[position - 8_000][1]][index % 3]
        records.insert(position, (key, poison))
    return records


def test_kill_9_and_restarts_give_exactly_the_uninterrupted_output(stack, namespaces, tmp_path):
    bootstrap = stack.kafka_bootstrap
    rng = random.Random(SEED)
    tag = tmp_path.name[-6:].replace("_", "")
    reference, crashed = namespaces(f"trc{tag}a."), namespaces(f"trc{tag}b.")
    records = with_poison(make_ticks([f"R{i:02d}-USD" for i in range(20)], TICKS, seed=SEED), rng)
    # One record timestamp for both logs (byte-identical), recent: produce_many's default (RECORD_MS).
    for namespace in (reference, crashed):
        settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace, partitions=4)
        ensure_topics(settings, settings.topics().all())
        produce_many(bootstrap, settings.topics().ticks.name, records)
    ticks = [KafkaSettings(topic_prefix=n).topics().ticks.name for n in (reference, crashed)]
    assert end_offsets(bootstrap, ticks[0]) == end_offsets(bootstrap, ticks[1])  # byte-identical logs

    began = time.monotonic()
    uninterrupted = Processor(bootstrap, reference, f"{reference}g", tmp_path / "reference")
    try:
        wait_drained(bootstrap, f"{reference}g", ticks[0], timeout_s=600, processors=[uninterrupted])
    finally:
        uninterrupted.terminate()
    reference_seconds = time.monotonic() - began
    print(f"uninterrupted run: {reference_seconds:.0f}s")

    group = f"{crashed}g"
    state = tmp_path / "crashed"
    processor = Processor(bootstrap, crashed, group, state, PROCESS_INSTANCE_ID="instance-0")
    kills = sorted(rng.uniform(0.1, 0.9) for _ in range(4))
    restarts_without_state = 0
    try:
        for number, fraction in enumerate(kills):
            wait_until(lambda f=fraction: progress(bootstrap, group, ticks[1], len(records)) >= f
                       or not processor.alive(), timeout_s=600, interval_s=0.1,
                       message=f"progress {fraction:.0%}")
            assert processor.alive(), processor.output[-3000:]
            processor.kill9()
            if number % 2 == 1:
                shutil.rmtree(state, ignore_errors=True)  # the next start restores state from the changelog
                restarts_without_state += 1
            processor.restart()
            if number == 1:
                # Killed again while starting/restoring state, at a seeded moment.
                time.sleep(rng.uniform(0.5, 3.0))  # noqa: TID251 - the point is to kill at an arbitrary moment
                processor.kill9()
                processor.restart()
        if restarts_without_state:
            processor.wait_running()
        wait_drained(bootstrap, group, ticks[1], timeout_s=600, processors=[processor])
        assert processor.metric("stockstream_process_state_recoveries_total") >= 1
    finally:
        processor.terminate()
    crashed_seconds = time.monotonic() - began - reference_seconds

    expected, actual = outputs_by_key(bootstrap, reference), outputs_by_key(bootstrap, crashed)
    assert sum(map(len, expected["indicators"].values())) > TICKS
    assert sum(map(len, expected["signals"].values())) > 100
    assert sorted(letter["reason"] for letters in expected["ticks.dlq"].values() for letter in letters) == \
        ["late"] * 4 + ["malformed_json"] * 4 + ["tick_invalid"] * 4
    for topic in expected:
        assert actual[topic].keys() == expected[topic].keys(), topic
        for key in expected[topic]:
            got, want = actual[topic][key], expected[topic][key]
            assert len(got) == len(want), (topic, key, len(got), len(want))  # no duplicate, no gap
            if topic == "ticks.dlq":
                # Dead letters of several input partitions share a key (their source) in the one-partition DLQ:
                # their order is only defined within each input partition.
                got, want = by_origin_partition(got), by_origin_partition(want)
            assert got == want, (topic, key)
    print(f"uninterrupted {reference_seconds:.0f}s, with {len(kills) + 1} kills {crashed_seconds:.0f}s")
