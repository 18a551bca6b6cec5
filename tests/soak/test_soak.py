"""CI-sized soak: every service for ~3 minutes at 100 ticks/s over 20 symbols, judged like the long soak.

The full soak (30 minutes at 500 ticks/s, ``bench/soak.py`` / ``make soak``) judges after a 5-minute
warm-up; here the run is short, so the windows shrink (warm-up 75 s, memory compared over the first and
last 30 s after it) and the ingest duplicate window is cut to 5 000 keys so that it is full — and stops
growing — before the warm-up ends (100 ticks/s fill it in ~50 s; at the default 100 000 it would fill
for 17 minutes and read as a leak). Judged here: memory growth < 10 % per service, lag within 5 s of
feed, no ERROR line in any log, no service died — outcomes that hold on any machine that keeps up.

The rate is one the slowest component sustains with a wide margin on a busy 2-core machine (one core
taken by other work): the CI soak proves the criteria, ``make soak`` measures speed. (150 ticks/s
passed at load ~25-30 and failed on the processor's lag at load 35-42 — 20 runnable threads per core.) Latency ceilings
(processor p99 ≤ 2 s, no drift) are speed figures: recorded here, judged by the full soak. One notifier
instance: with concurrent deliveries and batched commits a lane handles far more than the ~22 signals/s
of this feed (docs/notify.md; the CI failure of issue 12 was a lane committing a transaction per signal).

The feed and the soak clock start only once every consumer is ready and its group stable with every
input partition assigned (``start_consumers``), so no group join or rebalance falls into the run.
Figures and a PNG go to ``test-artifacts/soak-ci.{json,png}``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak.soak_support import SoakConfig, plot, run_soak

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

CI_SOAK = SoakConfig(name="ci", duration_s=165, rate=100, symbols=20, sample_every_s=2, warm_up_s=75,
                     judge_window_s=30, latency_window_s=20, ingest_dedup_window=5_000, notify_replicas=1,
                     judge_latency=False)
pytestmark = [pytest.mark.integration, pytest.mark.soak, pytest.mark.timeout(CI_SOAK.time_bound_s())]


def test_soak_ci(tmp_path):
    result = run_soak(CI_SOAK, tmp_path)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "soak-ci.json").write_text(result.to_json())
    plot(result, ARTIFACTS / "soak-ci.png")
    figures = result.verdict.figures
    print({key: figures.get(key) for key in ("memory", "lag_records", "process_p99_s", "achieved_rate", "error_lines")})
    assert figures["achieved_rate"] >= 0.9 * CI_SOAK.rate
    assert result.deliveries > 0
    assert not result.verdict.problems, result.verdict.problems
