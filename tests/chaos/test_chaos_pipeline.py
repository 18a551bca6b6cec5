"""Whole-system proof under faults: the chaos run of a feed gives exactly what a clean run of it gives.

The same seeded feed (byte-identical ticks) goes through the services twice, at the same time: once
undisturbed on the shared stack (``stack``, nothing there is ever stopped), once on a private stack
(the chaos run stops its Kafka and Redis) with ``kill -9`` of each service in turn, a broker stop/start, a Redis outage and a slow-then-failing webhook receiver (see
:mod:`tests.chaos.scenario`). Afterwards:

- the committed ``ticks``, ``indicators``, ``signals``, ``candles.1m`` and ``aggregates.daily``
  records are equal, payload by payload, in the same order per partition;
- the Redis views are equal key for key (namespace removed; positions compared through the
  record they point at);
- every signal the webhook channel subscribes to reached the receiver (a 200) exactly once by
  ``Idempotency-Key``, with the log's signal as body; raw re-sends are counted and reported;
- no dead-letter topic holds anything the clean run's does not (both should be empty).

The chaos feed is endless until every fault has recovered, then ended; the clean run ingests exactly
as many ticks (at least the plan's), so no fault depends on the machine being fast enough to land
before a fixed-length feed ends. ``test_chaos_ci`` (≥ 12 000 ticks, every fault once, short outages)
runs in ``make test``; ``test_chaos_full`` (≥ 200 000 ticks, Redis down 30 s) in ``make test-chaos``. Each writes its
figures to ``test-artifacts/chaos-<plan>.json`` (``CHAOS_REPORT_DIR`` overrides the folder); the full
run also to ``bench/results/chaos-full-<date>.json``, the file docs/chaos.md quotes (commit it).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from tests.chaos.compare import (
    DEAD_LETTER_TOPICS,
    DERIVED,
    account_notifications,
    compare_logs,
    compare_views,
    dead_letter_reasons,
    normalized_views,
    read_log,
)
from tests.chaos.deployment import CHANNEL, NOTIFIED_RULES, Deployment
from tests.chaos.probes import KafkaProbe
from tests.chaos.scenario import CI_PLAN, FULL_PLAN, ChaosPlan, ChaosRun, report_json, say, wait_drained
from tests.support.fake_receivers.http import HttpReceiver
from tests.support.kafka_tools import delete_topics, wait_until

HOOK = "/hook"
REPORT_DIR = Path(os.environ.get("CHAOS_REPORT_DIR", Path(__file__).resolve().parents[2] / "test-artifacts"))
RESULTS_DIR = Path(__file__).resolve().parents[2] / "bench" / "results"


def _failed_service(deployment: Deployment) -> None:
    """Raise with the log tail if a service is in a crash loop (the watchdog restarted it over and over)."""
    for name, running in deployment.services.items():
        if running.starts > 12:
            raise AssertionError(f"{name} keeps dying ({running.exits}):\n{deployment.output(name)[-3000:]}")


def run_chaos(stack, private_stack, tmp_path: Path, plan: ChaosPlan) -> dict:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    clean_ns, chaos_ns = f"cclean{tag}.", "chaos."
    clean_probe, chaos_probe = KafkaProbe(stack.kafka_bootstrap), KafkaProbe(private_stack.kafka_bootstrap)
    try:
        return _run_chaos(stack, private_stack, tmp_path, plan, clean_ns, chaos_ns, clean_probe, chaos_probe)
    finally:
        # rdkafka handles left to interpreter shutdown can crash the test process
        clean_probe.close()
        chaos_probe.close()
        delete_topics(stack.kafka_bootstrap, clean_ns)
        shared = redis.Redis.from_url(stack.redis_url)
        for key in shared.scan_iter(match=f"{clean_ns}*", count=1000):
            shared.delete(key)


def _run_chaos(stack, private_stack, tmp_path: Path, plan: ChaosPlan, clean_ns: str, chaos_ns: str,  # type: ignore[no-untyped-def]
               clean_probe: KafkaProbe, chaos_probe: KafkaProbe) -> dict:
    report: dict = {}
    clean_outcome: dict[str, object] = {}
    clean_thread: threading.Thread | None = None

    # 1. The chaos run on the private stack: an endless paced feed, every service, the faults one after
    #    another; once every fault has recovered the feed is ended, and the log holds `ticks` of it.
    with HttpReceiver() as receiver:
        chaos = Deployment(bootstrap=private_stack.kafka_bootstrap, redis_url=private_stack.redis_url,
                           namespace=chaos_ns, workdir=tmp_path / "chaos", feed=plan.feed(),
                           webhook_url=receiver.url(HOOK))
        began = time.monotonic()
        say(f"chaos run (private stack): at least {plan.ticks} ticks at {plan.rate:g}/s, until every fault recovered")
        chaos.start()
        run = ChaosRun(chaos, private_stack.stack, receiver, plan)
        try:
            wait_until(lambda: chaos.api_healthy() and len(receiver.requests(HOOK)) > 0
                       and (run.progress("materialize") or 0) > 0, timeout_s=plan.warm_up_timeout_s,
                       message="every service of the chaos run to be working")
            report["chaos_warm_up_s"] = round(time.monotonic() - began, 1)
            run.run_all(HOOK)
            while run.ticks_in_log() < plan.ticks:
                time.sleep(1.0)  # the feed's minimum length, by count (the faults may have come sooner)
            assert chaos.finish_feed() == 0, f"ingest did not stop cleanly:\n{chaos.output('ingest')[-3000:]}"
            ticks = run.ticks_in_log()
            report["ticks"] = ticks
            say(f"feed ended at {ticks} ticks; draining")

            # 2. The clean run, on the shared stack (nothing there is ever stopped): exactly those ticks as fast
            #    as they go, ingest + process + materialize, undisturbed — while the chaos run drains.
            clean = Deployment(bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url, namespace=clean_ns,
                               workdir=tmp_path / "clean", feed=plan.feed(rate=0, count=ticks), webhook_url=None)

            def clean_run() -> None:
                started = time.monotonic()
                clean.start(["ingest", "process", "materialize"])
                try:
                    wait_drained(clean, clean_probe, notify=False, timeout_s=plan.drain_timeout_s,
                                 check_services=lambda: _failed_service(clean))
                    clean_outcome["seconds"] = round(time.monotonic() - started, 1)
                except AssertionError as error:
                    clean_outcome["error"] = error
                finally:
                    clean.stop()

            say(f"clean run (shared stack): {ticks} ticks as fast as they go")
            clean_thread = threading.Thread(target=clean_run, name="clean-run", daemon=True)
            clean_thread.start()
            report["drain_after_faults_s"] = round(wait_drained(
                chaos, chaos_probe, notify=True, timeout_s=plan.drain_timeout_s,
                check_services=lambda: _failed_service(chaos)), 1)
        finally:
            chaos.stop()
            run.probe.close()
        report["chaos_run_s"] = round(time.monotonic() - began, 1)
        report["unplanned_restarts"] = dict(chaos.watchdog_restarts)
        report["exit_codes"] = {name: running.exits for name, running in chaos.services.items()}
        requests = receiver.requests(HOOK)
    assert clean_thread is not None
    clean_thread.join(plan.drain_timeout_s + 120)
    assert not clean_thread.is_alive(), f"the clean run did not finish within {plan.drain_timeout_s + 120:.0f}s"
    assert "error" not in clean_outcome, clean_outcome.get("error")
    assert "seconds" in clean_outcome, clean_outcome
    report["clean_run_s"] = clean_outcome["seconds"]

    # 3. Compare.
    began = time.monotonic()
    say("comparing")
    bases = ("ticks", *DERIVED, *DEAD_LETTER_TOPICS)
    logs = {clean_ns: {base: read_log(stack.kafka_bootstrap, clean_ns, base) for base in bases},
            chaos_ns: {base: read_log(private_stack.kafka_bootstrap, chaos_ns, base) for base in bases}}
    topics = {base: compare_logs(logs[clean_ns][base], logs[chaos_ns][base]) for base in ("ticks", *DERIVED)}
    views = compare_views(normalized_views(redis.Redis.from_url(stack.redis_url), clean_ns, logs[clean_ns]),
                          normalized_views(redis.Redis.from_url(private_stack.redis_url), chaos_ns, logs[chaos_ns]))
    notes = account_notifications(logs[chaos_ns]["signals"], requests, namespace=chaos_ns, channel=CHANNEL,
                                  rules=NOTIFIED_RULES)
    extra_dead = {base: sorted(map(str, dead_letter_reasons(logs[chaos_ns][base])
                                   - dead_letter_reasons(logs[clean_ns][base])))[:10]
                  for base in DEAD_LETTER_TOPICS}
    report.update(
        compare_s=round(time.monotonic() - began, 1),
        topics={base: vars(diff) for base, diff in topics.items()},
        views={"keys_clean": views.keys_clean, "keys_chaos": views.keys_chaos, "differing": views.differing[:20],
               "details": views.details},
        notifications=vars(notes),
        dead_letters={base: {"clean": logs[clean_ns][base].count, "chaos": logs[chaos_ns][base].count}
                      for base in DEAD_LETTER_TOPICS},
        extra_dead_letters=extra_dead,
    )
    text = report_json(plan, run.records, report)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / f"chaos-{plan.name}.json").write_text(text)
    print(text)

    assert logs[clean_ns]["ticks"].count == report["ticks"] >= plan.ticks
    for record in run.records:
        assert record.feed_running, f"{record.fault}: the feed had ended before the fault cleared"
        for part, figures in record.recovery.items():
            assert all(value is not None for value in figures.values()), f"{record.fault}: {part} never recovered"
    for base, diff in topics.items():
        assert diff.equal, f"{base} differs: {diff.first_difference}"
    assert views.equal, f"{len(views.differing)} view keys differ, e.g. {views.differing[:5]}"
    assert notes.expected > 0 and notes.exactly_once_by_key, vars(notes)
    assert not any(extra_dead.values()), f"dead letters the clean run did not have: {extra_dead}"
    return report


@pytest.mark.integration
@pytest.mark.chaos
@pytest.mark.timeout(CI_PLAN.time_bound_s())
def test_chaos_ci(stack, private_stack, tmp_path):
    run_chaos(stack, private_stack, tmp_path, CI_PLAN)


@pytest.mark.integration
@pytest.mark.chaos
@pytest.mark.chaos_full
@pytest.mark.timeout(FULL_PLAN.time_bound_s())
def test_chaos_full(stack, private_stack, tmp_path):
    report = run_chaos(stack, private_stack, tmp_path, FULL_PLAN)
    assert report["topics"]["ticks"]["chaos"] >= 200_000
    # The figures docs/chaos.md quotes come from here: kept, like the benchmarks', under bench/results/
    # (fill the docs with `python -m bench.figures update --run bench/results/chaos-full-<date>.json`).
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"chaos-full-{datetime.now(UTC):%Y-%m-%d}.json").write_text(
        (REPORT_DIR / "chaos-full.json").read_text())
