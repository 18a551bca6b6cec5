"""``RUN_RETENTION`` on the real stack: expired and abandoned runs lose their namespace, live never does.

Two real runs (``stockstream runs start``, processor and materializer as child processes) over a
small synthetic log: ``young`` made with ``RUN_RETENTION=1h``, ``old`` with ``RUN_RETENTION=3s``;
and ``ghost``, a run recorded as ``running`` two hours ago whose consumer group has no member
(its process died), owning a topic and a view key. Once ``old`` is past its expiry:

- ``runs prune --dry-run`` names ``old`` (expired) and ``ghost`` (abandoned), not ``young``;
  without ``--yes`` and without a terminal it refuses;
- ``runs prune --yes`` deletes exactly their topics, changelogs, view keys and records: ``young``
  and every live topic (end offsets) and live Redis key (type and content) are unchanged;
- ``runs start`` prunes a run past its expiry before it begins (the automatic trigger);
- with a ``live`` record (after promotes): the first live processor's namespace ``runs.live-<version>.*``,
  retired when it left the ``live`` record, goes at its expiry, and so does a run a killed promote left
  recorded ``serving``; the run that serves and the one ``strategy rollback`` returns to never do, even
  with no member in their groups.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis

from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputTopics
from processors.materialize.store import ViewStore
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.runs import RunLog
from processors.runtime.settings import KafkaSettings
from schemas.runs import LiveState, Namespace, Run, Serving, StrategyRef
from schemas.topics import TopicSpec
from schemas.upcasters import decode_run
from stockstream.handover import live_record
from tests.integration.replay.test_runs import LiveStack, _topics, live_snapshot, pythonpath
from tests.integration.spark.synthetic import produce_all, synthetic_log
from tests.integration.views.streams import make_stream
from tests.integration.views.test_views_store import log_of
from tests.support.kafka_tools import delete_topics, read_topic
from tests.support.processes import STOCKSTREAM

pytestmark = [pytest.mark.integration]


@dataclass
class Deployment:
    live: LiveStack

    def cli(self, *args: str, retention: str = "1h") -> subprocess.CompletedProcess[str]:
        return subprocess.run([STOCKSTREAM, *args], capture_output=True, text=True, timeout=600, check=False,
                              env=self.live.env | {"RUN_RETENTION": retention}, stdin=subprocess.DEVNULL)

    def record(self, run_id: str) -> Run | None:
        found = None
        for record in read_topic(self.live.bootstrap, f"{self.live.prefix}runs"):
            if record.key == run_id.encode():
                found = None if record.value is None else decode_run(record.value)
        return found

    def owned(self, run_id: str) -> tuple[list[str], list[bytes]]:
        """The run's topics (its own and its state's changelogs) and view keys, sorted (SCAN's order changes
        when Redis resizes its table, as deleting another run's keys may do)."""
        prefix = f"{self.live.prefix}runs.{run_id}."
        names = sorted(name for name in _topics(self.live.bootstrap) if name.startswith((prefix, f"changelog__{prefix}")))
        client = redis.Redis.from_url(self.live.redis_url)
        try:
            keys = sorted(client.scan_iter(match=f"{self.live.views}run:{run_id}:*", count=1000))
        finally:
            client.close()
        return names, keys


@pytest.fixture(scope="module")
def deployment(stack, tmp_path_factory) -> Iterator[Deployment]:
    prefix = f"tret{uuid.uuid4().hex[:8]}."
    settings = KafkaSettings(topic_prefix=prefix, bootstrap_servers=stack.kafka_bootstrap)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    produce_all(stack.kafka_bootstrap, registry.ticks.name,
                synthetic_log(("BTC-USD", "ETH-USD"), 400, datetime(2024, 4, 2, 21, tzinfo=UTC), timedelta(seconds=7)))
    views = f"{prefix}v:"
    # Live outputs and views that must survive every prune: topics with records, keys written by the real store.
    stream = make_stream(count=120)
    client = redis.Redis.from_url(stack.redis_url)
    keys = ViewKeys(views)
    ViewStore(client, keys, publish=False).apply(
        BatchPlanner(keys, InputTopics.from_registry(registry), Caps(), lambda: datetime.now(UTC)).plan(
            log_of(stream)))
    folder = tmp_path_factory.mktemp("retention")
    env = {"STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "PROCESS_STATE_DIR": str(folder / "state"), "METRICS_PORT": "0", "REDIS_URL": stack.redis_url,
           "REDIS_KEY_PREFIX": views, **pythonpath()}
    live = LiveStack(prefix, views, stack.kafka_bootstrap, stack.redis_url, env, [], folder / "none.toml")
    try:
        yield Deployment(live)
    finally:
        delete_topics(stack.kafka_bootstrap, prefix)
        delete_topics(stack.kafka_bootstrap, f"changelog__{prefix}")
        for key in client.scan_iter(match=f"{views}*", count=1000):
            client.delete(key)
        client.close()


def _ghost(deployment: Deployment) -> None:
    """A run whose process died two hours ago: recorded as running, no consumer, a topic and a key of its own."""
    live = deployment.live
    settings = KafkaSettings(topic_prefix=live.prefix, bootstrap_servers=live.bootstrap)
    started = datetime.now(UTC) - timedelta(hours=2)
    log = RunLog(settings)
    try:
        log.ensure()
        log.publish(Run(run_id="ghost", kind="replay", state="running", strategy=StrategyRef(version="0" * 16),
                        code_version="test", namespace=Namespace(topic_prefix=f"{live.prefix}runs.ghost."),
                        group=f"{live.prefix}runs.ghost.process", ts_event=started, ts_init=started))
    finally:
        log.close()
    ensure_topics(settings, [TopicSpec(f"{live.prefix}runs.ghost.signals", "symbol", Run, 1)])
    client = redis.Redis.from_url(live.redis_url)
    try:
        client.set(f"{live.views}run:ghost:instruments", "x")
    finally:
        client.close()


def test_prune_deletes_expired_and_abandoned_runs_and_nothing_else(deployment):
    made = deployment.cli("runs", "start", "--id", "young", "--from", "0", "--to", "60")
    assert made.returncode == 0, made.stderr[-3000:]
    made = deployment.cli("runs", "start", "--id", "old", "--from", "0", "--to", "60", retention="3s")
    assert made.returncode == 0, made.stderr[-3000:]
    _ghost(deployment)
    old = deployment.record("old")
    assert old is not None and old.state == "done" and old.expires_at is not None
    assert old.expires_at - old.ts_event == timedelta(seconds=3)
    young_names, young_keys = deployment.owned("young")
    assert young_names and young_keys
    old_names, _ = deployment.owned("old")
    assert old_names
    client = redis.Redis.from_url(deployment.live.redis_url)
    try:
        assert all(client.ttl(key) > 3000 for key in young_keys), "young's keys expire in an hour"
    finally:
        client.close()
    before = live_snapshot(deployment.live)
    while datetime.now(UTC) <= old.expires_at:  # wait for the expiry itself (a 3 s retention)
        time.sleep(0.2)

    listed = deployment.cli("runs", "prune", "--dry-run", "--json")
    assert listed.returncode == 0, listed.stderr
    due = {json.loads(line)["run_id"]: json.loads(line)["reason"] for line in listed.stdout.splitlines()}
    assert set(due) == {"old", "ghost"}, listed.stdout
    assert due["old"].startswith("expired at") and due["ghost"].startswith("abandoned")
    refused = deployment.cli("runs", "prune")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert deployment.owned("old")[0] == old_names, "a refused prune deletes nothing"

    pruned = deployment.cli("runs", "prune", "--yes", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert sorted(json.loads(line)["run_id"] for line in pruned.stdout.splitlines()) == ["ghost", "old"]
    for run_id in ("old", "ghost"):
        assert deployment.owned(run_id) == ([], []), run_id
        assert deployment.record(run_id) is None, run_id
    assert deployment.owned("young") == (young_names, young_keys)
    assert deployment.record("young") is not None
    assert live_snapshot(deployment.live) == before, "live topics and views are unchanged key for key"
    again = deployment.cli("runs", "prune", "--yes")
    assert again.returncode == 0 and "no run is past RUN_RETENTION" in again.stderr


def test_runs_start_prunes_an_expired_run_before_it_begins(deployment):
    made = deployment.cli("runs", "start", "--id", "brief", "--from", "0", "--to", "30", retention="1s")
    assert made.returncode == 0, made.stderr[-3000:]
    brief = deployment.record("brief")
    assert brief is not None and brief.expires_at is not None
    while datetime.now(UTC) <= brief.expires_at:
        time.sleep(0.2)
    before = live_snapshot(deployment.live)
    made = deployment.cli("runs", "start", "--id", "next", "--from", "0", "--to", "30")
    assert made.returncode == 0, made.stderr[-3000:]
    assert "pruned run brief (expired at" in made.stderr
    assert deployment.owned("brief") == ([], []) and deployment.record("brief") is None
    assert deployment.owned("next")[0] and deployment.record("next") is not None
    assert live_snapshot(deployment.live) == before


def _recorded(deployment: Deployment, run: Run) -> list[str]:
    """Publish ``run`` and give it a topic of its namespace; returns that topic's name."""
    live = deployment.live
    settings = KafkaSettings(topic_prefix=live.prefix, bootstrap_servers=live.bootstrap)
    log = RunLog(settings)
    try:
        log.ensure()
        log.publish(run)
    finally:
        log.close()
    name = f"{live.prefix}runs.{run.run_id}.signals"
    ensure_topics(settings, [TopicSpec(name, "symbol", Run, 1)])
    return [name]


def test_prune_bounds_a_demoted_live_processors_namespace_and_keeps_what_live_names(deployment):
    """Last (it writes a ``live`` record). After promotes (records as ``strategy promote`` writes them):
    ``b`` serves, ``a`` is what rollback returns to, ``live-…1`` (the first live processor) left the live
    record and was retired with an expiry, ``live-…2`` was left ``serving`` by a promote killed before it
    updated the records. Their groups have no member, all started two hours ago (past RUN_RETENTION)."""
    live = deployment.live
    past = datetime.now(UTC) - timedelta(hours=2)
    strategy = StrategyRef(version="0" * 16)
    live_group = f"{live.prefix}stockstream-process"

    def shadow(run_id: str, state: str, group: str, expires_at: datetime | None = None) -> Run:
        return Run(run_id=run_id, kind="shadow", state=state, strategy=strategy, code_version="test",  # type: ignore[arg-type]
                   namespace=Namespace(topic_prefix=f"{live.prefix}runs.{run_id}."), group=group,
                   expires_at=expires_at, ts_event=past, ts_init=past)

    retired, stale = "live-1111111111111111", "live-2222222222222222"
    named = {"a": shadow("a", "running", f"{live.prefix}runs.a.process"),
             "b": shadow("b", "serving", f"{live.prefix}runs.b.process")}
    gone = {retired: shadow(retired, "retired", live_group, expires_at=past + timedelta(minutes=5)),
            stale: shadow(stale, "serving", f"{live.prefix}stockstream-other")}
    topics = {run.run_id: _recorded(deployment, run) for run in (*named.values(), *gone.values())}
    state = LiveState(current=Serving(run_id="b", group=named["b"].group or "", strategy=strategy,
                                      switch={0: 0}, epoch=2, since=past),
                      previous=Serving(run_id="a", group=named["a"].group or "", strategy=strategy, since=past))
    log = RunLog(KafkaSettings(topic_prefix=live.prefix, bootstrap_servers=live.bootstrap))
    try:
        log.publish(live_record(state, "test", live.prefix))
    finally:
        log.close()
    before = live_snapshot(live)

    listed = deployment.cli("runs", "prune", "--dry-run", "--json")
    assert listed.returncode == 0, listed.stderr
    due = {json.loads(line)["run_id"]: json.loads(line)["reason"] for line in listed.stdout.splitlines()}
    assert set(due) >= set(gone) and not set(due) & set(named), listed.stdout
    assert due[retired].startswith("expired at") and due[stale].startswith("abandoned: recorded as serving")
    pruned = deployment.cli("runs", "prune", "--yes", "--json")
    assert pruned.returncode == 0, pruned.stderr
    for run_id in gone:
        assert deployment.owned(run_id) == ([], []) and deployment.record(run_id) is None, run_id
    for run_id in named:
        assert deployment.owned(run_id)[0] == topics[run_id] and deployment.record(run_id) is not None, run_id
    assert live_snapshot(live) == before, "live topics and views are unchanged key for key"
