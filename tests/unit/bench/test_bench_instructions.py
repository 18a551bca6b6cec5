"""``bench_processor_ab --instructions``: callgrind counts the drain alone, not the worker's start-up.

The worker calls its drain through ``operator.call`` and callgrind collects only under that C function. The
start-up it leaves out (imports, the log's loading, the set-up) is billions of instructions, far more than a few
hundred ticks' drain (a few hundred thousand each, bench/results/*-processor-ab-instructions.json): counted from
the start (a broken toggle), this run's count per tick is about ten million.
"""

from __future__ import annotations

import json
import shutil

import pytest

from bench.bench_processor_ab import REPO, WORKER, _run
from bench.bench_venues_ab import backlogs

pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind (apt-get install valgrind)")


def test_the_count_is_the_drains_alone(tmp_path):
    ticks = 300
    (tmp_path / "worker.py").write_text(WORKER)
    _, records = backlogs(ticks, 2)
    log = tmp_path / "v2.json"
    log.write_text(json.dumps([(key.hex(), value.hex()) for key, value in records]))
    found = _run(tmp_path, REPO, log, "-", "", "0", instructions=True)
    assert found["produced"]["indicators"] >= ticks, "the drain ran"
    assert 20_000 < found["instructions"] / ticks < 2_000_000, found["instructions"]
