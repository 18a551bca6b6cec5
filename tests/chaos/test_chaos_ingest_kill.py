"""``kill -9`` of ``stockstream ingest`` mid-run, then the same command again: the ticks log ends up exactly
the log of an uninterrupted run — no tick lost, none twice (by ``source_id``), same order per partition.

The seeded simulator on a simulated clock regenerates the same ticks from the start; the restarted
service must publish only those its killed predecessor did not get into the log. Reference: the same
command run once, uninterrupted, into another namespace (byte-identical by construction, tested in
tests/integration/ingest).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from tests.chaos.compare import read_log
from tests.chaos.deployment import Deployment, Feed
from tests.chaos.probes import KafkaProbe, wait_for
from tests.support.kafka_tools import delete_topics, wait_until

# The sum of the waits below (300 + 120 + 600 + 300 s) and the reading: a failure reports itself before this.
pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(1500)]

TICKS = 12_000
# 300 ticks/s: the kill at 40 % leaves ~24 s of feed for the poll to see the 40 % and the kill to land; the
# test asserts the kill did land mid-feed (a late one would have tested nothing).
FEED = Feed(symbols=tuple(f"K{i:02d}-USD" for i in range(10)), count=TICKS, seed=99, rate=300,
            start=datetime(2026, 11, 20, 22, 0, tzinfo=UTC), step_s=0.1)


def test_ingest_killed_and_restarted_publishes_every_tick_exactly_once(stack, tmp_path):
    tag = tmp_path.name[-8:].replace("_", "")
    clean_ns, killed_ns = f"cik{tag}a.", f"cik{tag}b."
    bootstrap = stack.kafka_bootstrap
    probe = KafkaProbe(bootstrap)
    clean = Deployment(bootstrap=bootstrap, redis_url=stack.redis_url, namespace=clean_ns,
                       workdir=tmp_path / "clean", feed=FEED, webhook_url=None)
    killed = Deployment(bootstrap=bootstrap, redis_url=stack.redis_url, namespace=killed_ns,
                        workdir=tmp_path / "killed", feed=FEED, webhook_url=None)
    try:
        clean.start(["ingest"], args={"ingest": FEED.args(rate=0)})
        killed.start(["ingest"])
        ticks = f"{killed_ns}ticks"

        def in_log() -> int:
            return probe.total(probe.ends([ticks])) or 0

        wait_until(lambda: in_log() >= TICKS * 0.4, timeout_s=300, message="40 % of the ticks in the log")
        killed.kill9("ingest")
        at_kill = in_log()
        assert at_kill < TICKS and not killed.ingest_finished(), "the kill came after the feed ended"
        restarted = killed.restart("ingest")
        resumed = wait_for(lambda: in_log() > at_kill, timeout_s=120, since=restarted)
        wait_until(killed.ingest_finished, timeout_s=600, message="the restarted ingest to finish")
        wait_until(clean.ingest_finished, timeout_s=300, message="the reference ingest to finish")

        reference, after_kill = read_log(bootstrap, clean_ns, "ticks"), read_log(bootstrap, killed_ns, "ticks")
        ids = Counter(json.loads(payload)["source_id"] for payloads in after_kill.partitions.values()
                      for payload in payloads)
        duplicates = {source_id: n for source_id, n in ids.items() if n > 1}
        print(f"killed at {at_kill}/{TICKS} ticks in the log; publishing again {resumed.seconds}s after the"
              f" restart; {len(ids)} distinct source ids, {sum(ids.values())} records, {len(duplicates)} duplicated")
        assert reference.count == TICKS
        assert not duplicates, f"{len(duplicates)} source ids published twice, e.g. {sorted(duplicates)[:3]}"
        assert len(ids) == TICKS, f"{TICKS - len(ids)} ticks lost"
        assert after_kill.partitions == reference.partitions  # same bytes, same order per partition
    finally:
        probe.close()
        clean.stop()
        killed.stop()
        delete_topics(bootstrap, clean_ns)
        delete_topics(bootstrap, killed_ns)
