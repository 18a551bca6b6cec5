"""``stockstream runs`` on the real stack: a run replays into its own namespace while live runs.

A live ``stockstream process`` and ``stockstream materialize`` process a synthetic log (poison,
late and keyless records included) to its end and keep running for the whole module. Then:

- a run of a past range with **another strategy** leaves every live topic (end offsets) and
  every live Redis key (type and content, notifications included) exactly as it was, and its
  own topics hold exactly what the batch engine (``reference_events``: the live pipeline step
  run in-process over the same records) computes for that range and strategy, warm like a backfill;
- ``runs diff live R`` reports zero differences for a run of the live strategy over the same
  range (and equal scorecards side by side), and for the other strategy exactly the signals and
  the scorecards the batch engine predicts;
- a run of a past range warms up by the backfill's rule without being asked (``--warm-from``
  unset) and equals live's outputs over its range; ``--warm-from none`` starts cold;
- ``runs drop`` removes the run's topics, state and keys, and nothing of live.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from confluent_kafka.admin import AdminClient
from fastapi.testclient import TestClient

from processors.core.pipeline import PipelineConfig
from processors.core.rundiff import Span, diff_scorecards, diff_signals
from processors.core.strategy import DEFAULT_STRATEGY, PipelineConfigs, load_strategy
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from processors.stream.settings import ProcessSettings
from schemas.events import Candle, DailySummary, DeadLetter, IndicatorSnapshot, Signal
from schemas.upcasters import decode_run
from stockstream.api.app import create_app
from stockstream.api.settings import ApiSettings
from stockstream.commands.runs import WindowCloses
from stockstream.replayer import Kafka
from tests.integration.replay.test_replay import _caught_up
from tests.integration.spark import synthetic
from tests.integration.spark.synthetic import Reference, produce_all, synthetic_log, window_closes
from tests.support.kafka_tools import Record, delete_topics, end_offsets, read_topic, wait_until
from tests.support.processes import STOCKSTREAM, ServiceProcess, running

pytestmark = [pytest.mark.integration]
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")
RECORDS = 6_000
ALTERNATIVE = """\
# The default strategy with a wider RSI band: more rsi_reversal signals.
[rules.rsi_reversal]
oversold = 40.0
overbought = 60.0
"""
KINDS = {"indicators": IndicatorSnapshot, "candles": Candle, "signals": Signal, "daily": DailySummary,
         "dead_letters": DeadLetter}


@dataclass
class LiveStack:
    prefix: str
    views: str  # the live Redis key prefix
    bootstrap: str
    redis_url: str
    env: dict[str, str]
    records: list[Record]
    alternative: Path

    def settings(self) -> KafkaSettings:
        return KafkaSettings(topic_prefix=self.prefix, bootstrap_servers=self.bootstrap)

    def cli(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([STOCKSTREAM, *args], capture_output=True, text=True, timeout=timeout_s, check=False,
                              env=self.env, stdin=subprocess.DEVNULL)


def pythonpath() -> dict[str, str]:
    """``PYTHONPATH`` when the tests run with one (a checkout not installed in the venv): the CLI runs the same code."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


def _topics(bootstrap: str) -> list[str]:
    return sorted(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def live_snapshot(stack: LiveStack) -> dict[str, object]:
    """Every live topic's end offsets and every live Redis key's type and content (runs' keys aside)."""
    # The run list (``runs``) is metadata, not an output; a run's topics start with ``runs.<id>.``.
    live_topics = [name for name in _topics(stack.bootstrap) if name.startswith(stack.prefix)
                   and not name.startswith(f"{stack.prefix}runs.") and name != f"{stack.prefix}runs"]
    found: dict[str, object] = {f"topic {name}": end_offsets(stack.bootstrap, name) for name in live_topics}
    client = redis.Redis.from_url(stack.redis_url)
    try:
        for raw in client.scan_iter(match=f"{stack.views}*", count=1000):
            key = raw.decode()
            if key.startswith(f"{stack.views}run:"):
                continue
            kind = client.type(raw).decode()
            if kind == "hash":
                content: object = sorted(client.hgetall(raw).items())
            elif kind == "zset":
                content = client.zrange(raw, 0, -1, withscores=True)
            elif kind == "list":
                content = client.lrange(raw, 0, -1)
            elif kind == "set":
                content = sorted(client.smembers(raw))
            elif kind == "stream":
                content = client.xrange(raw)
            else:
                content = client.get(raw)
            found[f"redis {key}"] = (kind, content)
    finally:
        client.close()
    return found


@pytest.fixture(scope="module")
def live_stack(stack, tmp_path_factory) -> Iterator[LiveStack]:
    prefix = f"trun{uuid.uuid4().hex[:8]}."
    settings = KafkaSettings(topic_prefix=prefix, bootstrap_servers=stack.kafka_bootstrap)
    registry = settings.topics()
    ensure_topics(settings, registry.all())
    produce_all(stack.kafka_bootstrap, registry.ticks.name,
                synthetic_log(SYMBOLS, RECORDS, datetime(2024, 4, 2, 21, tzinfo=UTC), timedelta(seconds=7), seed=5))
    folder = tmp_path_factory.mktemp("runs")
    alternative = folder / "alternative.toml"
    alternative.write_text(ALTERNATIVE)
    views = f"{prefix}v:"
    env = {"STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "PROCESS_STATE_DIR": str(folder / "state"), "METRICS_PORT": "0", "REDIS_URL": stack.redis_url,
           "REDIS_KEY_PREFIX": views, **pythonpath()}
    with running(["process", "--metrics-port", "0"], env) as processor, running(["materialize"], env) as views_:
        wait_until(lambda: _caught_up(stack.kafka_bootstrap, f"{prefix}stockstream-process", registry.ticks.name)
                   or not processor.alive(), timeout_s=240, message="the live processor to reach the log's end")
        assert processor.alive(), processor.output[-3000:]
        derived = [spec.name for spec in (registry.indicators, registry.signals, registry.aggregates_daily,
                                          registry.candles("1m"), registry.ticks)]

        kafka = Kafka(settings)  # lag(): transaction markers after the last record are not left to read
        try:
            targets = {(name, p): end for name in derived for p, end in end_offsets(stack.kafka_bootstrap, name).items()}
            wait_until(lambda: kafka.lag(f"{prefix}stockstream-materialize", targets) == 0 or not views_.alive(),
                       timeout_s=240, message="the live views to catch up")
        finally:
            kafka.close()
        assert views_.alive(), views_.output[-3000:]
        records = read_topic(stack.kafka_bootstrap, registry.ticks.name)
        yield LiveStack(prefix, views, stack.kafka_bootstrap, stack.redis_url, env, records, alternative)
        assert processor.alive() and views_.alive(), "the live services ran through the whole module"
    delete_topics(stack.kafka_bootstrap, prefix)
    delete_topics(stack.kafka_bootstrap, f"changelog__{prefix}")
    client = redis.Redis.from_url(stack.redis_url)
    try:
        for key in client.scan_iter(match=f"{views}*", count=1000):
            client.delete(key)
    finally:
        client.close()


HORIZONS_MS = (60_000, 300_000, 3_600_000, 86_400_000)  # the processor's default SCORECARD_HORIZONS (1m,5m,1h,1d)


def _configs(strategy_file: Path | None, horizons_ms: tuple[int, ...] = ()) -> PipelineConfigs:
    strategy = DEFAULT_STRATEGY if strategy_file is None else load_strategy(strategy_file)
    return PipelineConfigs(strategy, candle_timeframes=("1m",), grace_ms=5_000, horizons_ms=horizons_ms,
                           live_update_ms=1_000)


def reference_events(records: list[Record], configs: PipelineConfigs) -> Reference:
    """What ``stockstream process`` (live and runs alike) writes: the partitions' stream time, live updates at
    the default LIVE_UPDATE_INTERVAL (1 s)."""
    return synthetic.reference_events(records, configs, stream_time=True)


def _quarters(stack: LiveStack) -> tuple[dict[int, int], dict[int, int]]:
    ends = end_offsets(stack.bootstrap, f"{stack.prefix}ticks")
    return {p: end // 4 for p, end in ends.items()}, {p: 3 * end // 4 for p, end in ends.items()}


def _spec(offsets: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(offsets.items()))


def _run_record(stack: LiveStack, run_id: str):
    found = None
    for record in read_topic(stack.bootstrap, f"{stack.prefix}runs"):
        if record.key == run_id.encode():
            found = None if record.value is None else decode_run(record.value)
    return found


def _run_events(stack: LiveStack, run_id: str) -> dict[str, list[str]]:
    """The run's output topics, decoded and re-encoded canonically, by kind (a multiset each)."""
    base = f"{stack.prefix}runs.{run_id}."
    topics = {"indicators": "indicators", "candles": "candles.1m", "signals": "signals", "daily": "aggregates.daily",
              "dead_letters": "ticks.dlq"}
    return {kind: sorted(KINDS[kind].model_validate_json(r.value).model_dump_json()
                         for r in read_topic(stack.bootstrap, base + name) if r.value is not None)
            for kind, name in topics.items()}


def _expected(reference: Reference, start: dict[int, int], end: dict[int, int]) -> dict[str, list[str]]:
    return {kind: sorted(item[3].model_dump_json() for item in reference.between(kind, start, end))
            for kind in KINDS}


def test_a_run_with_another_strategy_leaves_live_untouched_and_equals_the_batch_engine(live_stack):
    quarter, three_quarters = _quarters(live_stack)
    before = live_snapshot(live_stack)
    result = live_stack.cli("runs", "start", "--id", "alt", "--from", _spec(quarter), "--to", _spec(three_quarters),
                            "--strategy", str(live_stack.alternative), "--description", "wider RSI band", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    after = live_snapshot(live_stack)
    assert [key for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)] == []
    assert after == before, "live topics and views are unchanged key for key"

    run = _run_record(live_stack, "alt")
    assert run is not None and run.state == "done" and run.strategy.file == str(live_stack.alternative)
    assert run.range is not None and run.range.start == quarter
    # No --warm-from: the backfill's rule, which reaches before this 12-hour log's beginning.
    assert run.range.warm_from == dict.fromkeys(quarter, 0)
    assert run.namespace.topic_prefix == f"{live_stack.prefix}runs.alt."
    assert run.namespace.redis_prefix == f"{live_stack.views}run:alt:"
    assert run.expires_at is not None and run.produced["signals"] > 0
    end = run.range.end
    assert end is not None and all(end[p] >= three_quarters[p] for p in three_quarters)

    # A backfill of the range with the run's strategy: warm from the log's beginning, its events over the range.
    expected = _expected(reference_events(live_stack.records, _configs(live_stack.alternative)), quarter, end)
    assert expected["signals"] and expected["indicators"]
    assert _run_events(live_stack, "alt") == expected

    settings = ApiSettings(bootstrap_servers=live_stack.bootstrap, redis_url=live_stack.redis_url,
                           redis_key_prefix=live_stack.views)
    run_signals = {json.loads(value)["signal_id"] for value in expected["signals"]}
    live_ids = {Signal.model_validate_json(r.value).signal_id
                for r in read_topic(live_stack.bootstrap, f"{live_stack.prefix}signals") if r.value is not None}
    assert live_ids
    with TestClient(create_app(settings)) as api:
        shown = set()
        for symbol in SYMBOLS:
            answer = api.get(f"/instruments/synthetic/{symbol}/signals", params={"run": "alt", "limit": 500})
            assert answer.status_code == 200, answer.text
            shown |= {signal["signal_id"] for signal in answer.json()["signals"]}
            live_answer = api.get(f"/instruments/synthetic/{symbol}/signals", params={"limit": 500})
            assert {s["signal_id"] for s in live_answer.json()["signals"]} <= live_ids
        assert shown and shown <= run_signals and shown - live_ids, "?run=alt shows the run's views"
        assert api.get("/symbols", params={"run": "Not_A-Run"}).status_code == 422

    client = redis.Redis.from_url(live_stack.redis_url)
    try:
        run_keys = list(client.scan_iter(match=f"{live_stack.views}run:alt:*", count=1000))
        assert run_keys, "the run's views are materialized under its own prefix"
        assert all(0 < client.ttl(key) for key in run_keys), "every run key expires (RUN_RETENTION)"
    finally:
        client.close()


def _no_difference(result: subprocess.CompletedProcess[str]) -> dict:
    """The ``runs diff --json`` report that must find no difference; a failure shows its signals, not its scorecards."""
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(result.stdout[-2000:] + result.stderr[-2000:]) from None
    signals = json.dumps({key: value for key, value in report.items() if key != "scorecards"})
    assert result.returncode == 0 and report["differences"] == 0, signals[:4000]
    assert report["same"] > 0
    return report


def test_runs_diff_reports_nothing_for_the_live_strategy_and_what_the_batch_engine_predicts_for_another(live_stack):
    _quarter, three_quarters = _quarters(live_stack)
    result = live_stack.cli("runs", "start", "--id", "same", "--from", "0", "--to", _spec(three_quarters))
    assert result.returncode == 0, result.stderr[-3000:]
    report = _no_difference(live_stack.cli("runs", "diff", "live", "same", "--json"))
    # The same strategy over the same range: the same scorecards, side by side.
    assert report["scorecards"] and all(pair["a"] == pair["b"] for pair in report["scorecards"])
    assert sum(pair["a"]["outcomes"] for pair in report["scorecards"]) > 0

    alt = _run_record(live_stack, "alt")
    if alt is None:  # this test alone: make the other run
        quarter, _ = _quarters(live_stack)
        made = live_stack.cli("runs", "start", "--id", "alt", "--from", _spec(quarter), "--to",
                              _spec(three_quarters), "--strategy", str(live_stack.alternative))
        assert made.returncode == 0, made.stderr[-3000:]
        alt = _run_record(live_stack, "alt")
    assert alt is not None and alt.range is not None and alt.range.end is not None
    changed = live_stack.cli("runs", "diff", "live", "alt", "--json")
    assert changed.returncode == 1, changed.stderr[-2000:]
    report = json.loads(changed.stdout)

    live_reference = reference_events(live_stack.records, _configs(None, HORIZONS_MS))
    # The run warmed up from the log's beginning (the backfill's rule on this short log): the batch engine from there.
    alt_records = [r for r in live_stack.records if r.offset < alt.range.end[r.partition]]
    alt_reference = reference_events(alt_records, _configs(live_stack.alternative, HORIZONS_MS))
    predicted = diff_signals([item[3] for item in live_reference.signals], Span(dict.fromkeys(alt.range.start, 0), None),
                             [item[3] for item in alt_reference.signals], Span(alt.range.start, alt.range.end),
                             window_closes(live_stack.records, PipelineConfig(grace_ms=5_000)))
    assert predicted.differences > 0
    assert [s["signal_id"] for s in report["only_a"]] == [s.signal_id for s in predicted.only_a]
    assert [s["signal_id"] for s in report["only_b"]] == [s.signal_id for s in predicted.only_b]
    assert [s["signal_id"] for s in report["unclosed_a"]] == [s.signal_id for s in predicted.unclosed_a]
    assert [s["signal_id"] for s in report["unclosed_b"]] == [s.signal_id for s in predicted.unclosed_b]
    assert [(c["a"]["signal_id"], c["b"]["signal_id"]) for c in report["changed"]] == \
        [(a.signal_id, b.signal_id) for a, b in predicted.changed]
    assert report["same"] == predicted.same
    # Scorecards side by side over the common range, as the batch engine's outcomes give them.
    cards = diff_scorecards([item[3] for item in live_reference.signals], [item[3] for item in live_reference.outcomes],
                            Span(dict.fromkeys(alt.range.start, 0), None),
                            [item[3] for item in alt_reference.signals], [item[3] for item in alt_reference.outcomes],
                            Span(alt.range.start, alt.range.end))
    assert cards and any(pair.a != pair.b for pair in cards)
    assert report["scorecards"] == [pair.to_json() for pair in cards]
    text = live_stack.cli("runs", "diff", "live", "alt")
    assert "scorecards over the common range" in text.stdout
    first = cards[0].key
    assert f"{first.strategy} {first.timeframe} {first.symbol}@{first.venue} {first.horizon}: live " in text.stdout


def test_the_diff_reads_in_the_ticks_log_whether_a_runs_input_closed_a_candle_window(live_stack):
    """``runs diff``'s ``closes`` (``WindowCloses``) answers from the ticks log as ``window_closes`` does from the
    records in memory, for a run that ended before, at and after the tick that closed a 1m signal's window."""
    fired = next(item[3] for item in reference_events(live_stack.records, _configs(None)).signals
                 if item[3].timeframe == "1m")
    partition, origin = fired.lineage.partition, fired.lineage.offset
    in_memory = window_closes(live_stack.records, PipelineConfig(grace_ms=5_000))
    closer = next(record.offset for record in sorted(live_stack.records, key=lambda r: r.offset)
                  if record.partition == partition and record.offset > origin
                  and in_memory(fired, Span({partition: 0}, {partition: record.offset + 1})))
    settings = ProcessSettings(topic_prefix=live_stack.prefix, bootstrap_servers=live_stack.bootstrap)
    assert (settings.grace_ms, settings.candle_timeframes) == (5_000, ("1m",))
    reader = WindowCloses(settings, settings.topics().ticks.name)
    try:
        for end in (origin + 1, closer, closer + 1, None):
            span = Span({partition: 0}, None if end is None else {partition: end})
            assert reader(fired, span) == in_memory(fired, span) == (end is None or end > closer), end
    finally:
        reader.close()


def test_runs_list_shows_runs_and_drop_removes_only_the_run(live_stack):
    made = live_stack.cli("runs", "start", "--id", "gone", "--from", "100", "--to", "140", "--warm-from", "none")
    assert made.returncode == 0, made.stderr[-3000:]
    assert "warm-up: none (--warm-from none)" in made.stderr
    cold = _run_record(live_stack, "gone")
    assert cold is not None and cold.range is not None and cold.range.warm_from is None, "started cold at --from"
    listed = live_stack.cli("runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "gone" in [json.loads(line)["run_id"] for line in listed.stdout.splitlines()]
    before = live_snapshot(live_stack)

    refused = live_stack.cli("runs", "drop", "gone")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    dropped = live_stack.cli("runs", "drop", "gone", "--yes")
    assert dropped.returncode == 0, dropped.stderr
    assert not [name for name in _topics(live_stack.bootstrap)
                if name.startswith((f"{live_stack.prefix}runs.gone.", f"changelog__{live_stack.prefix}runs.gone."))]
    client = redis.Redis.from_url(live_stack.redis_url)
    try:
        assert not list(client.scan_iter(match=f"{live_stack.views}run:gone:*", count=1000))
    finally:
        client.close()
    assert _run_record(live_stack, "gone") is None
    assert live_snapshot(live_stack) == before, "dropping a run touches nothing live"
    listed = live_stack.cli("runs", "list", "--json")
    assert "gone" not in [json.loads(line)["run_id"] for line in listed.stdout.splitlines()]


def test_a_run_warms_up_by_default_and_equals_live_over_its_range(live_stack):
    """--from q, no --warm-from: the backfill's rule (the midnight before q's tick − 1 day − the warm-up) reaches
    before this 12-hour log's beginning, so the state is built from there and the outputs from q equal live's."""
    quarter, three_quarters = _quarters(live_stack)
    result = live_stack.cli("runs", "start", "--id", "warm", "--from", _spec(quarter), "--to", _spec(three_quarters))
    assert result.returncode == 0, result.stderr[-3000:]
    zeros = dict.fromkeys(quarter, 0)
    assert (f"warm-up: {sum(quarter.values()):,} records from {_spec(zeros)} (the log's beginning) build the state"
            " before the range; the backfill's rule: ticks since ") in result.stderr, result.stderr[:2000]
    run = _run_record(live_stack, "warm")
    assert run is not None and run.range is not None and run.range.end is not None
    assert run.range.warm_from == zeros and run.range.start == quarter
    reference = reference_events(live_stack.records, _configs(None))  # = live (tests/integration/spark)
    assert _run_events(live_stack, "warm") == _expected(reference, quarter, run.range.end)
    report = _no_difference(live_stack.cli("runs", "diff", "live", "warm", "--json"))
    # The same strategy over the same range: the same scorecards, side by side.
    assert report["scorecards"] and all(pair["a"] == pair["b"] for pair in report["scorecards"])
    assert sum(pair["a"]["outcomes"] for pair in report["scorecards"]) > 0


def test_a_shadow_run_follows_live_ticks_in_its_own_namespace(live_stack):
    """Last in this module (it adds ticks): --follow --warm-from 0 --from <now> with another strategy."""
    ticks = f"{live_stack.prefix}ticks"
    ends = end_offsets(live_stack.bootstrap, ticks)
    shadow = ServiceProcess(["runs", "start", "--id", "shadow", "--follow", "--warm-from", "0", "--from", _spec(ends),
                             "--strategy", str(live_stack.alternative)], live_stack.env)
    kafka = Kafka(live_stack.settings())
    try:
        def caught_up(group: str, targets: dict[int, int]) -> bool:
            assert shadow.alive(), shadow.output[-3000:]
            return kafka.lag(group, {(ticks, p): end for p, end in targets.items()}) == 0

        wait_until(lambda: caught_up(f"{live_stack.prefix}runs.shadow.process", ends), timeout_s=300,
                   message="the shadow to warm up")
        produce_all(live_stack.bootstrap, ticks, synthetic_log(SYMBOLS, 1_200, datetime(2024, 4, 3, 10, tzinfo=UTC),
                                                               timedelta(seconds=7), seed=8))
        new_ends = end_offsets(live_stack.bootstrap, ticks)
        wait_until(lambda: caught_up(f"{live_stack.prefix}runs.shadow.process", new_ends), timeout_s=300,
                   message="the shadow to follow the new ticks")
        wait_until(lambda: caught_up(f"{live_stack.prefix}stockstream-process", new_ends), timeout_s=300,
                   message="live to process the new ticks")
        assert shadow.terminate(120) == 0, shadow.output[-3000:]
    finally:
        shadow.terminate()
        kafka.close()
    records = read_topic(live_stack.bootstrap, ticks)
    expected = _expected(reference_events(records, _configs(live_stack.alternative)), ends, new_ends)
    assert expected["signals"]
    assert _run_events(live_stack, "shadow") == expected, "the shadow computed the new ticks with its strategy, warm"
    live = {Signal.model_validate_json(r.value).signal_id
            for r in read_topic(live_stack.bootstrap, f"{live_stack.prefix}signals") if r.value is not None}
    live_expected = {item[3].signal_id for item in reference_events(records, _configs(None)).signals}
    assert live == live_expected, "live kept its own strategy; no shadow signal reached it"
    run = _run_record(live_stack, "shadow")
    assert run is not None and run.kind == "shadow" and run.state == "stopped"
