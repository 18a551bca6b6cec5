"""The file source resumes at its last acknowledged line (processors/ingest/sources/file_position.py).

The source runs over real files with a real position folder; "acknowledged by Kafka" is the
caller saving a :class:`Checkpoint` (the ingest service does so after a flush with nothing pending,
tests/integration/ingest/test_ingest_file_resume.py runs that against the broker). Proven: a restart
resumes at the right line with the same ``source_id`` numbering (also past a CSV header that
declares another column order); a replaced or truncated file, a ticks topic created again and an
unreadable position file start over; a stop between producing and saving re-reads only the lines
since the last saved checkpoint; positions are per input, so the same file twice is read twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from processors.ingest.sources.base import Accepted, Checkpoint, Outcome
from processors.ingest.sources.file import FileSource, file_tag
from processors.ingest.sources.file_position import FilePositions
from processors.ingest.validation import TimeBounds

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def lines(first: int, last: int) -> str:
    return "".join(f"2024-05-01T10:{n // 60:02d}:{n % 60:02d}Z,BTC-USD,{100 + n}\n" for n in range(first, last + 1))


class Run:
    """One ingest run of the file source: the source ids it yields; checkpoints saved unless ``save_until``."""

    def __init__(self, folder: Path, log_id: str = "topic-1", checkpoint_lines: int = 10, **kwargs) -> None:
        self.positions = FilePositions(folder, "127.0.0.1:9092\nticks", lambda: log_id, **kwargs)
        self.checkpoint_lines = checkpoint_lines

    def read(self, *paths: Path, save_until: int | None = None) -> list[str]:
        source = FileSource(paths, TimeBounds(), now=lambda: NOW, positions=self.positions,
                            checkpoint_lines=self.checkpoint_lines, monotonic=lambda: 0.0)
        ids: list[str] = []
        for place, path in enumerate(paths):
            outcome: Outcome
            for outcome in source.outcomes(path, place):
                if isinstance(outcome, Checkpoint):
                    if save_until is None or outcome.line <= save_until:
                        outcome.save()
                else:
                    assert isinstance(outcome, Accepted)
                    ids.append(outcome.tick.source_id)
        return ids


def numbers(ids: list[str]) -> list[int]:
    return [int(source_id.rsplit(":", 1)[1]) for source_id in ids]


def test_a_restart_resumes_at_the_line_after_the_last_saved_one(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(lines(1, 25))
    assert numbers(Run(tmp_path / "state").read(path)) == list(range(1, 26))
    assert Run(tmp_path / "state").read(path) == []  # read to the end: nothing again
    with path.open("a") as handle:  # appended to: only the new lines
        handle.write(lines(26, 30))
    ids = Run(tmp_path / "state").read(path)
    assert numbers(ids) == list(range(26, 31))
    assert all(source_id.startswith(file_tag(path)) for source_id in ids)


def test_a_csv_header_still_decides_the_columns_after_a_resume(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text("price,symbol,timestamp\n" + "".join(
        f"{100 + n},ETH-USD,2024-05-01T10:00:{n:02d}Z\n" for n in range(1, 21)))
    run = Run(tmp_path / "state", checkpoint_lines=5)
    assert len(run.read(path, save_until=12)) == 20  # checkpoints at lines 5, 10 (saved), 15, 20, 21
    source = FileSource((path,), TimeBounds(), now=lambda: NOW, positions=run.positions, checkpoint_lines=5)
    resumed = [outcome for outcome in source.outcomes(path) if isinstance(outcome, Accepted)]
    assert [outcome.tick.price for outcome in resumed] == [100.0 + n for n in range(10, 21)]  # lines 11-21
    assert numbers([outcome.tick.source_id for outcome in resumed]) == list(range(11, 22))


def test_a_stop_before_the_position_is_saved_re_reads_only_the_lines_since_the_last_saved_one(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(lines(1, 47))
    run = Run(tmp_path / "state", checkpoint_lines=10)
    # Lines 1-47 produced; Kafka acknowledged up to the checkpoint at line 30, then the process was
    # killed before the next save (the checkpoints at 40 and 47 never saved).
    assert len(run.read(path, save_until=30)) == 47
    again = Run(tmp_path / "state", checkpoint_lines=10).read(path)
    assert numbers(again) == list(range(31, 48))  # the unacknowledged lines only, at most a checkpoint's worth + tail


def test_a_replaced_or_truncated_file_is_read_from_the_start_with_a_warning(tmp_path, caplog):
    path = tmp_path / "feed.csv"
    path.write_text(lines(1, 20))
    Run(tmp_path / "state").read(path)
    path.write_text(lines(1, 5))  # truncated
    with caplog.at_level(logging.WARNING):
        assert numbers(Run(tmp_path / "state").read(path)) == list(range(1, 6))
    assert "replaced or truncated" in caplog.text
    path.write_text(lines(101, 130))  # replaced by a longer file: another head
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert len(Run(tmp_path / "state").read(path)) == 30
    assert "replaced or truncated" in caplog.text


def test_a_ticks_topic_created_again_gets_the_whole_file(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(lines(1, 12))
    Run(tmp_path / "state", log_id="topic-1").read(path)
    assert len(Run(tmp_path / "state", log_id="topic-2").read(path)) == 12
    assert Run(tmp_path / "state", log_id="topic-2").read(path) == []


def test_an_unreadable_position_and_from_start_read_everything(tmp_path, caplog):
    path = tmp_path / "feed.csv"
    path.write_text(lines(1, 12))
    run = Run(tmp_path / "state")
    run.read(path)
    assert len(Run(tmp_path / "state", from_start=True).read(path)) == 12
    run.positions.path_of(0, path).write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert len(Run(tmp_path / "state").read(path)) == 12
    assert "unreadable" in caplog.text


def test_each_input_has_its_own_position_so_the_same_file_twice_is_read_twice(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(lines(1, 8))
    assert numbers(Run(tmp_path / "state").read(path, path)) == list(range(1, 9)) * 2
    assert Run(tmp_path / "state").read(path, path) == []


def test_the_position_file_holds_no_path_in_its_name_and_is_replaced_atomically(tmp_path):
    path = tmp_path / "secret-name.csv"
    path.write_text(lines(1, 3))
    run = Run(tmp_path / "state")
    run.read(path)
    files = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert len(files) == 1 and files[0].startswith("file-position-") and "secret" not in files[0]


def test_a_slow_replay_is_checkpointed_every_second_not_only_every_n_lines(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(lines(1, 9))
    ticks = iter(range(1000))  # the monotonic clock moves 0.4 s per reading
    source = FileSource((path,), TimeBounds(), now=lambda: NOW, checkpoint_lines=10_000,
                        positions=Run(tmp_path / "state").positions, monotonic=lambda: next(ticks) * 0.4)
    saved = [outcome.line for outcome in source.outcomes(path) if isinstance(outcome, Checkpoint)]
    assert saved == [3, 6, 9]  # a second after the last save at lines 3, 6 and 9 (the end: nothing new)


def test_a_position_folder_that_cannot_be_written_refuses_the_start(tmp_path: Path) -> None:
    """Found by the container test: on a read-only root the default folder failed at the first save,
    and the source restarted from line 1 every second. Now ingest refuses to start and says what to set."""
    from typer.testing import CliRunner

    from stockstream.cli import app

    data = tmp_path / "ticks.csv"
    data.write_text(lines(0, 3))
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = CliRunner().invoke(app, ["ingest", "--source", "file", "--path", str(data)],
                                env={"INGEST_FILE_POSITION_DIR": str(blocked / "positions"), "METRICS_PORT": "0",
                                     "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.exit_code == 2, result.output
    assert "cannot write the file positions to" in result.output
    assert "set INGEST_FILE_POSITION_DIR to a writable folder" in result.output
