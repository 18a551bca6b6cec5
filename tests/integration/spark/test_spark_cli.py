"""``stockstream backfill`` and ``stockstream backtest`` on the command line, and the progress bar.

The commands run in-process (typer's runner) and reuse the test session's SparkSession (a
command only stops a session it started), so no extra JVM is launched.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from rich.console import Console
from typer.testing import CliRunner

from spark_jobs.progress import SparkProgress
from stockstream.cli import app
from tests.integration.spark.compare import read_dataset

pytestmark = [pytest.mark.integration, pytest.mark.spark]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands install a stderr handler bound to the runner's stream, closed after each call."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _env(spark_log) -> dict[str, str]:
    return {"STOCKSTREAM_TOPIC_PREFIX": spark_log.prefix, "KAFKA_BOOTSTRAP_SERVERS": spark_log.bootstrap,
            "SPARK_MASTER": "local[2]"}


def _json(output: str) -> dict:
    return json.loads(next(line for line in output.splitlines() if line.startswith("{")))


def test_backfill_command_writes_the_range_and_reports_it(spark_session, spark_log, tmp_path):
    ends = spark_log.ends()
    starts = {p: end // 2 for p, end in ends.items()}
    stops = {p: end // 2 + 3000 for p, end in ends.items()}
    result = CliRunner().invoke(app, [
        "backfill", "--from-offset", ",".join(f"{p}:{o}" for p, o in starts.items()),
        "--to-offset", ",".join(f"{p}:{o}" for p, o in stops.items()), "--symbols", "BTC-USD,SOL-USD",
        "--output", str(tmp_path / "out"), "--json",
    ], env=_env(spark_log))
    assert result.exit_code == 0, result.output
    report = _json(result.stdout)
    expected = [r for r in spark_log.records
                if r.key in (b"BTC-USD@synthetic", b"SOL-USD@synthetic") and starts[r.partition] <= r.offset < stops[r.partition]]
    assert report["rows"] == len(expected) > 0
    assert {group["key"] for group in report["groups"]} == {"BTC-USD@synthetic", "SOL-USD@synthetic"}
    assert all(group["status"] == "converged" for group in report["groups"])
    indicators = read_dataset(tmp_path / "out", "indicators")
    assert set(indicators["symbol"]) == {"BTC-USD", "SOL-USD"} and len(indicators) == report["events"]["indicators"]

    again = CliRunner().invoke(app, ["backfill", "--from-offset", "0", "--symbols", "BTC-USD", "--output",
                                     str(tmp_path / "out"), "--mode", "error"], env=_env(spark_log))
    assert again.exit_code == 2 and "already holds backfill output" in again.output


def test_backfill_command_refuses_bad_ranges_before_starting_spark(spark_log):
    runner = CliRunner()
    both = runner.invoke(app, ["backfill", "--from-offset", "5", "--from-time", "2024-03-01"], env=_env(spark_log))
    garbled = runner.invoke(app, ["backfill", "--from-offset", "0:x"], env=_env(spark_log))
    bad_time = runner.invoke(app, ["backfill", "--from-time", "yesterday"], env=_env(spark_log))
    nothing = runner.invoke(app, ["backfill", "--no-parquet"], env=_env(spark_log))
    assert both.exit_code == garbled.exit_code == bad_time.exit_code == nothing.exit_code == 2
    assert "not both" in both.output and "offsets look like" in garbled.output
    assert "nothing to write" in nothing.output


def test_backtest_over_a_log_range_equals_the_backtest_of_its_backfill(spark_session, spark_log, tmp_path):
    """`backtest --from-time …` (a backfill into a temporary folder, then the simulation) is deterministic."""
    env = _env(spark_log)
    common = ["--symbols", "ETH-USD", "--fee", "0.0005", "--mode", "long-short", "--json"]
    ranged = CliRunner().invoke(app, ["backtest", "--from-time", "2024-03-04", "--to-time", "2024-03-06",
                                      "--trades", str(tmp_path / "a.csv"), "--plot", str(tmp_path / "a.png"),
                                      *common], env=env)
    assert ranged.exit_code == 0, ranged.output
    filled = CliRunner().invoke(app, ["backfill", "--from-time", "2024-03-04", "--to-time", "2024-03-06",
                                      "--symbols", "ETH-USD", "--output", str(tmp_path / "bf")], env=env)
    assert filled.exit_code == 0, filled.output
    direct = CliRunner().invoke(app, ["backtest", "--input", str(tmp_path / "bf"), "--trades", str(tmp_path / "b.csv"),
                                      "--plot", str(tmp_path / "b.png"), *common], env=env)
    assert direct.exit_code == 0, direct.output
    assert _json(ranged.stdout) == _json(direct.stdout)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    report = _json(direct.stdout)["ETH-USD@synthetic"]  # one backtest per instrument
    assert report["strategy"]["trades"] > 0 and report["buy_and_hold"]["trades"] == 1


def test_progress_bar_follows_spark_tasks(spark_session):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    spark = spark_session.spark
    with SparkProgress(spark, console) as progress, progress.step("counting"):
        assert spark.range(0, 200_000, numPartitions=8).selectExpr("sum(id) as s").collect()[0]["s"] > 0
    text = buffer.getvalue()
    assert "counting" in text and "tasks" in text
    assert "9/9" in text or "8/8" in text, text[-500:]
    assert progress.timings["counting"] > 0
