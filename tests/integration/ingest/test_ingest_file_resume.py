"""A restarted ``stockstream ingest --source file`` resumes at its last acknowledged line (real broker).

The real command runs as a subprocess on the shared broker, in its own namespace and position
folder. It is killed with ``kill -9`` in the middle of a file, after it saved a position and
while records were in flight; the restart reads only from the saved position on (its summary
counts the lines it received), and the log holds every line of the file exactly once: nothing
lost, nothing published twice (the lines read again are within the duplicate window). A third run
finds the file read to its end and publishes nothing.
"""

from __future__ import annotations

import json
import re
import time

from processors.ingest.sources.file import file_tag
from tests.support.kafka_tools import read_topic
from tests.support.processes import ServiceProcess

LINES = 40_000
CHECKPOINT = 2_000


def summary_count(output: str, field: str) -> int:
    found = re.findall(rf"\b{field}=(\d+)", output)
    assert found, output[-3000:]
    return int(found[-1])


def test_a_killed_file_ingest_resumes_at_its_saved_line_and_publishes_every_line_once(stack, namespace, tmp_path,
                                                                                        ingest_env):
    path = tmp_path / "long.csv"
    path.write_text("timestamp,symbol,price\n" + "".join(
        f"{1_714_557_600 + n},BTC-USD,{100 + n % 50}.5\n" for n in range(LINES)))
    positions = tmp_path / "ingest-state"
    env = {**ingest_env, "INGEST_FILE_CHECKPOINT_LINES": str(CHECKPOINT), "INGEST_FILE_SPEED": "2000",
           "INGEST_FILE_POSITION_DIR": str(positions)}  # ~1 line/0.5 ms of event time: ~20 s for the file
    first = ServiceProcess(["ingest", "--source", "file", "--path", str(path)], env)
    deadline = time.monotonic() + 60
    saved = None
    while time.monotonic() < deadline:
        files = list(positions.glob("file-position-*.json")) if positions.exists() else []
        if files and json.loads(files[0].read_text())["line"] >= 3 * CHECKPOINT:
            saved = files[0]
            break
        assert first.alive(), first.output[-3000:]
        time.sleep(0.05)
    assert saved is not None, first.output[-3000:]
    first.kill9()
    line = json.loads(saved.read_text())["line"]
    assert 3 * CHECKPOINT <= line < LINES + 1

    second = ServiceProcess(["ingest", "--source", "file", "--path", str(path)],
                            {**env, "INGEST_FILE_SPEED": "1000000"})
    assert second.wait(120) == 0, second.output[-3000:]
    assert summary_count(second.output, "received") == LINES + 1 - line  # from the saved line on, not line 1
    tag = file_tag(path)
    records = sorted(read_topic(stack.kafka_bootstrap, f"{namespace}ticks"), key=lambda r: r.offset)
    ids = [json.loads(record.value)["source_id"] for record in records]
    assert ids == [f"{tag}:{n}" for n in range(2, LINES + 2)]  # every line once, in file order

    third = ServiceProcess(["ingest", "--source", "file", "--path", str(path)], env)
    assert third.wait(60) == 0, third.output[-3000:]
    assert summary_count(third.output, "received") == 0
