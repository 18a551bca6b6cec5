"""The processor never discards its state silently on a config change (issue 16).

Restarted with another candle timeframe set, ``stockstream process`` stops with exit code 2
and a message naming ``--cold-start`` at the first symbol whose stored state was built for the
old set, having committed nothing; with ``--cold-start`` (``PROCESS_COLD_START``) it starts
those symbols afresh and goes on.
"""

from __future__ import annotations

import os
import signal

import pytest
from stream_support import Processor, committed_offsets, make_ticks, wait_drained

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from tests.support.kafka_tools import end_offsets, produce, wait_until

pytestmark = pytest.mark.integration


def test_a_changed_timeframe_set_is_refused_unless_cold_start(stack, namespaces, tmp_path):
    namespace = namespaces("tgrd" + tmp_path.name[-6:].replace("_", "") + ".")
    bootstrap = stack.kafka_bootstrap
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace)
    topics = settings.topics()
    ensure_topics(settings, topics.all())
    ticks = make_ticks(["AAA-USD", "BBB-USD"], 300, seed=3)
    produce(bootstrap, topics.ticks.name, ticks[:200])
    group = f"{namespace}g"
    first = Processor(bootstrap, namespace, group, tmp_path / "state")
    try:
        wait_drained(bootstrap, group, topics.ticks.name, processors=[first])
        os.killpg(first.service.process.pid, signal.SIGINT)
        assert first.service.wait(60) == 0
    finally:
        first.terminate()
    produce(bootstrap, topics.ticks.name, ticks[200:])
    partitions = len(end_offsets(bootstrap, topics.ticks.name))
    before = committed_offsets(bootstrap, group, topics.ticks.name, partitions)
    indicators = end_offsets(bootstrap, topics.indicators.name)

    changed = Processor(bootstrap, namespace, group, tmp_path / "state", STOCKSTREAM_TIMEFRAMES="1m,5m")
    try:
        wait_until(lambda: not changed.alive(), timeout_s=180, message="the processor to refuse the stored state")
        assert changed.service.wait(10) == 2, changed.output[-3000:]
    finally:
        changed.terminate()
    assert "--cold-start" in changed.output and "refusing to discard" in changed.output
    assert committed_offsets(bootstrap, group, topics.ticks.name, partitions) == before, "nothing committed"
    assert end_offsets(bootstrap, topics.indicators.name) == indicators, "nothing produced"

    cold = Processor(bootstrap, namespace, group, tmp_path / "state", STOCKSTREAM_TIMEFRAMES="1m,5m",
                     PROCESS_COLD_START="true")
    try:
        wait_drained(bootstrap, group, topics.ticks.name, processors=[cold])
    finally:
        cold.terminate()
