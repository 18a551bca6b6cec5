"""The warm-up ``runs start`` chooses by default, on a real log longer than it (stockstream/warmup.py).

A 4½-day log of ticks (one a minute per symbol) whose record timestamps are their event times, as a
feed writes them, so the backfill's rule cuts the log inside:

- ``warm_start`` picks, per partition, the first record stamped at or after *the midnight before the
  range's first tick − 1 day − the warm-up − the clock skew*, never past the range start — the read
  start a backfill of the range computes; a shadow from the log's end is dated by the newest ticks;
- ``stockstream runs start`` without ``--warm-from`` prints that warm-up, records it, and produces over
  its range what a run from the log's beginning produces: the same candles, daily summaries and
  signals, and indicators equal to 1e-9 (the backfill's contract; exact equality needs the log's
  beginning, tested in test_runs.py).
"""

from __future__ import annotations

import math
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from processors.core.timeutil import to_us
from processors.runtime.kafka_admin import ensure_topics
from processors.stream.settings import ProcessSettings
from schemas.events import Candle, DailySummary, IndicatorSnapshot, Signal, Tick, encode
from schemas.upcasters import decode_run
from spark_jobs.backfill.ranges import warmup_read_from_us
from stockstream.warmup import run_warmup, warm_start
from tests.integration.replay.test_runs import HORIZONS_MS, _configs, _spec, pythonpath, reference_events
from tests.support.kafka_tools import Record, delete_topics, end_offsets, read_topic, topic_configs
from tests.support.processes import STOCKSTREAM

pytestmark = [pytest.mark.integration]
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")
START = datetime(2024, 4, 1, tzinfo=UTC)
SKEW_US = 300 * 10**6  # BACKFILL_CLOCK_SKEW_SECONDS' default


def _log(minutes: int) -> list[tuple[bytes, bytes, int]]:
    """(key, value, timestamp ms): every symbol once a minute, prices on a slow wave."""
    found = []
    for minute in range(minutes):
        for index, symbol in enumerate(SYMBOLS):
            moment = START + timedelta(minutes=minute, seconds=7 * index)
            price = round(100.0 * (index + 1) * (1 + 0.05 * math.sin(minute / 97 + index)), 4)
            tick = Tick(venue="synthetic", symbol=symbol, price=price, volume=1.0 + (minute % 7), ts_event=moment,
                        ts_init=moment, source="synthetic", source_id=f"w-{minute}-{index}")
            found.append((f"{symbol}@synthetic".encode(), encode(tick), to_us(moment) // 1000))
    return found


@pytest.fixture(scope="module")
def long_log(stack):
    prefix = f"twarm{uuid.uuid4().hex[:8]}."
    settings = ProcessSettings(topic_prefix=prefix, bootstrap_servers=stack.kafka_bootstrap,
                               candle_timeframes=("1m",), scorecard_horizons=("1m", "5m", "1h", "1d"))
    ensure_topics(settings, settings.topics().all())
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 20})
    for key, value, stamp in _log(int(4.5 * 24 * 60)):
        producer.produce(settings.topics().ticks.name, value=value, key=key, timestamp=stamp)
        producer.poll(0)
    assert producer.flush(60) == 0
    yield settings, read_topic(stack.kafka_bootstrap, settings.topics().ticks.name, timeout_s=300)
    delete_topics(stack.kafka_bootstrap, prefix)
    delete_topics(stack.kafka_bootstrap, f"changelog__{prefix}")


def _expected_offsets(records: list[Record], starts: dict[int, int], dating: dict[int, int],
                      duration_us: int) -> dict[int, int]:
    """The rule, computed from the records themselves."""
    at = {(r.partition, r.offset): r for r in records}
    first = min(to_us(Tick.model_validate_json(at[p, o].value).ts_event) for p, o in dating.items() if (p, o) in at)
    bound = warmup_read_from_us(first, duration_us) - SKEW_US
    found = {}
    for p, start in starts.items():
        stamped = [r.offset for r in records if r.partition == p and r.timestamp_ms * 1000 >= bound]
        found[p] = min(min(stamped, default=start), start)
    return found


def test_warm_start_reads_from_the_backfills_point_of_the_log(long_log):
    settings, records = long_log
    ends = end_offsets(settings.bootstrap_servers, settings.topics().ticks.name)
    starts = {p: 4 * end // 5 for p, end in ends.items()}
    warmup, _ = run_warmup(settings)
    chosen = warm_start(settings, starts, ends)
    expected = _expected_offsets(records, starts, starts, warmup.duration_us)
    assert chosen.offsets == expected
    assert all(0 < chosen.offsets[p] < starts[p] for p in starts if ends[p]), "the rule cuts this log inside"
    assert chosen.records == sum(starts[p] - expected[p] for p in starts)
    assert chosen.midnight == datetime(2024, 4, 4, tzinfo=UTC)

    shadow = warm_start(settings, ends, ends)  # a shadow from the log's end: the newest ticks date it
    newest = {p: end - 1 for p, end in ends.items() if end}
    assert shadow.offsets == _expected_offsets(records, ends, newest, warmup.duration_us)
    assert shadow.midnight == datetime(2024, 4, 5, tzinfo=UTC)


def test_runs_start_warms_up_by_default_and_equals_a_run_from_the_beginning(long_log, stack, tmp_path):
    settings, records = long_log
    prefix = settings.topic_prefix
    ends = end_offsets(settings.bootstrap_servers, settings.topics().ticks.name)
    starts = {p: 4 * end // 5 for p, end in ends.items()}
    stops = {p: min(start + 150, ends[p]) for p, start in starts.items()}
    env = {"STOCKSTREAM_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "PROCESS_STATE_DIR": str(tmp_path / "state"), "METRICS_PORT": "0", "REDIS_URL": stack.redis_url,
           "REDIS_KEY_PREFIX": f"{prefix}v:", "STOCKSTREAM_TIMEFRAMES": "1m",
           "SCORECARD_HORIZONS": "1m,5m,1h,1d", **pythonpath()}
    result = subprocess.run([STOCKSTREAM, "runs", "start", "--id", "auto", "--from", _spec(starts), "--to",
                             _spec(stops), "--no-views"], capture_output=True, text=True, timeout=900, check=False,
                            env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    chosen = warm_start(settings, starts, stops)
    assert f"warm-up: {chosen.records:,} records from {_spec(chosen.offsets)} build the state" in result.stderr
    # The range starts on 2024-04-04 (4/5 of 4.5 days); the default strategy on 1m with a 1d horizon: 1d 7h 3m.
    assert "the backfill's rule: ticks since 2024-04-01T16:57:00Z = midnight 2024-04-04 − 1 day − 1d 7h 3m of" \
        " warm-up (423 periods of 1m and the longest scorecard horizon)." in result.stderr, result.stderr[:600]

    run = None
    for record in read_topic(settings.bootstrap_servers, f"{prefix}runs"):
        if record.key == b"auto":
            run = None if record.value is None else decode_run(record.value)
    assert run is not None and run.state == "done" and run.range is not None and run.range.end is not None
    assert run.range.warm_from == chosen.offsets and run.range.start == starts

    # Its outputs carry the timestamps of 2024's ticks: a time retention on its topics would let the broker delete them
    # at its next retention check (a proof run of 2026-12-07 caught one between the run and the reads below).
    kept = topic_configs(settings.bootstrap_servers, f"{prefix}runs.auto.", ("retention.ms", "retention.bytes"))
    assert kept and all(config == {"retention.ms": "-1", "retention.bytes": "-1"} for config in kept.values()), kept

    configs = _configs(None, HORIZONS_MS)  # what `stockstream process` runs: stream time, live updates at 1 s
    reference = reference_events(records, configs)
    end = run.range.end

    def produced(name: str, model):  # type: ignore[no-untyped-def]
        return [model.model_validate_json(r.value)
                for r in read_topic(settings.bootstrap_servers, f"{prefix}runs.auto.{name}") if r.value is not None]

    for kind, name, model in (("candles", "candles.1m", Candle), ("daily", "aggregates.daily", DailySummary)):
        assert sorted(e.model_dump_json() for e in produced(name, model)) == \
            sorted(item[3].model_dump_json() for item in reference.between(kind, starts, end)), kind
    assert sorted((s.signal_id, s.side) for s in produced("signals", Signal)) == \
        sorted((item[3].signal_id, item[3].side) for item in reference.between("signals", starts, end))
    expected = {(i.lineage.partition, i.lineage.offset, i.timeframe): i
                for _p, _o, _s, i in reference.between("indicators", starts, end)}
    got = {(i.lineage.partition, i.lineage.offset, i.timeframe): i for i in produced("indicators", IndicatorSnapshot)}
    assert got.keys() == expected.keys() and got
    for key, snapshot in got.items():
        want = expected[key].values
        assert snapshot.values.keys() == want.keys(), key
        for name, value in snapshot.values.items():
            if value is None or want[name] is None:
                assert value == want[name], (key, name)
            else:
                assert math.isclose(value, want[name], rel_tol=1e-9, abs_tol=1e-9), (key, name, value, want[name])
