"""The machinery of ``stockstream replay`` and ``stockstream runs start``: child processors over a range of the log.

Runs the real ``stockstream process`` (and ``stockstream materialize``) as child processes under
a consumer group positioned at the range start, follows the group's committed offsets, and stops
at the first checkpoint at or past the end. The commands decide where the outputs go (a run's
namespace through ``STOCKSTREAM_RUN`` in the children's environment, or live).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))
POLL_S = 0.5
MARKER_SLACK = 3  # offsets a partition may be "short" only because of transaction control records
STALL_PROBE_S = 5.0  # a views drain whose group has committed nothing this long probes every partition behind
STALL_REPORT_S = 60.0  # and says which partitions it still waits on this often
STABLE_POLL_S = 0.05  # committed offsets still settling (a transaction's markers): asked again this often
STABLE_TIMEOUT_S = 60.0


class ReplayError(RuntimeError):
    """The replay cannot start or went wrong; the message says why and what to do."""


class Child:
    """One ``stockstream`` child process, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
            [STOCKSTREAM, *args], stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **env}, start_new_session=True)

    def failed(self) -> bool:
        return self.process.poll() not in (None, 0)

    def stop(self, timeout_s: float = 60.0) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()
        return int(self.process.returncode)

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Kafka:
    """The admin calls of a replay (confluent-kafka AdminClient and a probe consumer)."""

    def __init__(self, settings: Any) -> None:
        from confluent_kafka import Consumer
        from confluent_kafka.admin import AdminClient

        self.settings = settings
        self.admin = AdminClient({**settings.client_config(), "socket.timeout.ms": 10_000})
        self.consumer = Consumer({**settings.client_config(), "group.id": "stockstream-replay-probe",
                                  "enable.auto.commit": False})

    def close(self) -> None:
        self.consumer.close()

    def partitions(self, topic: str) -> list[int]:
        found = self.consumer.list_topics(topic, timeout=30).topics.get(topic)
        if found is None or found.error is not None:
            raise ReplayError(f"topic {topic!r} does not exist (check KAFKA_TOPIC / STOCKSTREAM_TOPIC_PREFIX)")
        return sorted(found.partitions)

    def watermarks(self, topic: str) -> tuple[dict[int, int], dict[int, int]]:
        from confluent_kafka import TopicPartition

        from processors.runtime.watermarks import watermarks

        low, high = {}, {}
        for p in self.partitions(topic):
            low[p], high[p] = watermarks(self.consumer, TopicPartition(topic, p), 30)
        return low, high

    def ends(self, topics: list[str]) -> dict[tuple[str, int], int]:
        existing = self.consumer.list_topics(timeout=30).topics
        return {(topic, p): end for topic in topics if topic in existing
                for p, end in self.watermarks(topic)[1].items()}

    def members(self, group: str) -> int:
        description = self.admin.describe_consumer_groups([group])[group].result()
        return len(description.members)

    def committed(self, group: str, topic: str | None = None, *,
                  timeout_s: float = STABLE_TIMEOUT_S) -> dict[tuple[str, int], int]:
        """The group's committed offset per (topic, partition); partitions it never committed are left out.

        Stable offsets only. A processor under exactly-once commits its offsets in its checkpoint's
        transaction, and the broker writes the transaction's markers *after* the commit returns:
        for those milliseconds a plain read still answers the previous checkpoint's offsets
        (KIP-447). ``strategy promote`` reads a group that has just stopped and takes what it reads
        as the stop point, so it asks for stable offsets; a partition with a pending commit answers
        UNSTABLE_OFFSET_COMMIT and is asked again until its transaction is settled (an open
        transaction of a killed processor: when the broker aborts it, after its transaction
        timeout). Raises :class:`ReplayError` when that takes longer than ``timeout_s``.
        """
        from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError

        deadline = time.monotonic() + timeout_s
        while True:
            request = [ConsumerGroupTopicPartitions(group)]
            found = self.admin.list_consumer_group_offsets(request, require_stable=True)[group].result()
            unstable = [tp for tp in found.topic_partitions
                        if tp.error is not None and tp.error.code() == KafkaError.UNSTABLE_OFFSET_COMMIT]
            if not unstable:
                return {(tp.topic, tp.partition): tp.offset for tp in found.topic_partitions
                        if tp.offset >= 0 and (topic is None or tp.topic == topic)}
            if time.monotonic() > deadline:
                where = ", ".join(f"{tp.topic}:{tp.partition}" for tp in unstable)
                raise ReplayError(f"group {group!r} has a transaction still open on {where} after {timeout_s:.0f}s"
                                  " (a stopped processor's open transaction is aborted after"
                                  " PROCESS_TRANSACTION_TIMEOUT_MS); try again")
            time.sleep(STABLE_POLL_S)

    def commit(self, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

        partitions = [TopicPartition(topic, p, offset) for (topic, p), offset in sorted(offsets.items())]
        request = ConsumerGroupTopicPartitions(group, partitions)
        self.admin.alter_consumer_group_offsets([request])[group].result()

    def lag(self, group: str, targets: Mapping[tuple[str, int], int], *, probe: bool = False,
            committed: Mapping[tuple[str, int], int] | None = None) -> int:
        """Records the group has still to commit before ``targets`` (exclusive ends), transaction markers aside.

        A transactional producer leaves a control record after its last data record, which a
        consumer never commits past; so when a partition is a few offsets short, a
        read_committed probe checks whether any data record is really left there. ``probe``: look
        in every partition behind, however far: the tail of an aborted transaction (its records and
        its marker) is never committed past either, and can be any length. A partition counts as having
        nothing readable left only once a read_committed reader reaches its target; until then (an open
        transaction, or one whose commit markers are still being written) it counts as behind. ``committed``: the group's
        committed offsets when the caller has just read them.
        """
        from confluent_kafka import Consumer, KafkaError, TopicPartition

        if committed is None:
            committed = self.committed(group)
        behind = {where: committed.get(where, 0) for where, end in targets.items() if committed.get(where, 0) < end}
        lag = sum(targets[where] - offset for where, offset in behind.items())
        if not behind or (not probe and any(targets[where] - offset > MARKER_SLACK for where, offset in behind.items())):
            return lag
        reader = Consumer({**self.settings.client_config(), "group.id": "stockstream-replay-probe",
                           "enable.auto.commit": False, "isolation.level": "read_committed",
                           "enable.partition.eof": True})
        try:
            reader.assign([TopicPartition(topic, p, offset) for (topic, p), offset in behind.items()])
            unknown, left = set(behind), 0
            deadline = time.monotonic() + 10
            while unknown and time.monotonic() < deadline:
                for message in reader.consume(500, timeout=0.5):
                    where = (message.topic(), message.partition())
                    error = message.error()
                    if error is not None:
                        # The end of what read_committed may read: nothing readable is left only if that end is the
                        # target. Short of it, a transaction there is not decided yet (or its markers are still
                        # being written just after a commit): ask again until the deadline, then count it as lag.
                        if error.code() == KafkaError._PARTITION_EOF and message.offset() >= targets[where]:
                            unknown.discard(where)
                        continue
                    if where in unknown and message.offset() < targets[where]:
                        left += targets[where] - message.offset()
                        unknown.discard(where)
            return left + sum(targets[where] - behind[where] for where in unknown)
        finally:
            reader.close()

    def changelogs(self, group: str) -> list[str]:
        return sorted(name for name in self.consumer.list_topics(timeout=30).topics
                      if name.startswith(f"changelog__{group}--"))

    def delete_topics(self, names: list[str]) -> None:
        if names:
            for future in self.admin.delete_topics(names, operation_timeout=60).values():
                future.result()


def _offsets(spec: Any, partitions: list[int], low: Mapping[int, int], high: Mapping[int, int],
             default: Mapping[int, int]) -> dict[int, int]:
    if spec is None:
        return dict(default)
    chosen = {p: spec for p in partitions} if isinstance(spec, int) else {p: spec.get(p, default[p]) for p in partitions}
    return {p: min(max(chosen[p], low[p]), high[p]) for p in partitions}


def resolve_range(settings: Any, kafka: Kafka, topic: str, *, from_offset: str | None, from_time: str | None,
                  to_offset: str | None, to_time: str | None, follow: bool) -> tuple[dict[int, int], dict[int, int] | None]:
    """The start and stop offsets per partition of a range given by offsets or event times.

    Called by ``replay`` and ``runs start``. Raises ``RangeError``/``ReplayError`` with a message to show.
    """
    from spark_jobs.backfill.ranges import offsets_at_event_time, parse_offsets
    from stockstream.commands.backfill import parse_time

    low, high = kafka.watermarks(topic)
    partitions = sorted(low)
    skew = 300_000_000
    if from_time is not None:
        starts = offsets_at_event_time(settings, topic, parse_time(from_time, "--from-time"), skew)
    else:
        starts = _offsets(None if from_offset is None else parse_offsets(from_offset), partitions, low, high, low)
    stops: dict[int, int] | None
    if to_time is not None:
        stops = offsets_at_event_time(settings, topic, parse_time(to_time, "--to-time"), skew)
    elif follow:
        stops = None
    else:
        stops = _offsets(None if to_offset is None else parse_offsets(to_offset), partitions, low, high, high)
    if stops is not None and any(starts[p] > stops[p] for p in partitions):
        raise ReplayError("the range ends before it starts")
    return starts, stops


def run_replay(err: Console, kafka: Kafka, settings: Any, topic: str, group: str, starts: dict[int, int],
         stops: dict[int, int] | None, *, yes: bool, views: bool, views_prefix: str | None, keep_state: bool,
         child_env: Mapping[str, str] | None = None, produced_out: dict[str, int] | None = None) -> int:
    if kafka.members(group):
        raise ReplayError(f"group {group!r} has running members: stop its `stockstream process` instances first")
    changelogs = kafka.changelogs(group)
    state_dir = settings.state_dir / group
    existing = bool(kafka.committed(group) or changelogs or state_dir.exists())
    if existing:
        where = ", ".join(f"{p}:{o}" for p, o in sorted(starts.items()))
        question = (f"Reset group {group!r}: delete its state ({', '.join(changelogs) or 'no changelog topic'}"
                    f"{', ' + str(state_dir) if state_dir.exists() else ''}) and restart it at {where}?")
        if not yes:
            if not sys.stdin.isatty():
                raise ReplayError(f"group {group!r} exists: pass --yes to reset it (no terminal to ask)")
            if not typer.confirm(question, default=False, err=True):
                raise ReplayError("nothing done")
        kafka.delete_topics(changelogs)
        shutil.rmtree(state_dir, ignore_errors=True)
    kafka.commit(group, {(topic, p): offset for p, offset in starts.items()})

    registry = settings.topics()
    outputs = [registry.indicators.name, registry.signals.name, registry.aggregates_daily.name,
               *(registry.candles(tf).name for tf in registry.candle_timeframes), registry.ticks_dlq.name]
    before = kafka.ends(outputs)
    log_dir = Path(tempfile.mkdtemp(prefix=f"stockstream-replay-{group.replace('/', '_')}-"))
    children: list[Child] = []
    began = time.monotonic()
    try:
        args = ["process", "--group", group, "--state-dir", str(settings.state_dir), "--metrics-port", "0"]
        if settings.strategy_file is not None:
            args += ["--strategy", str(settings.strategy_file)]
        processor = Child("process", args, dict(child_env or {}), log_dir)
        children.append(processor)
        materializer = None
        viewed = [name for name in outputs if name != registry.ticks_dlq.name]  # the materializer's inputs
        if views:
            view_group = f"{group}-views"
            kafka.commit(view_group, {**{(topic, p): o for p, o in starts.items()},
                                      **{where: end for where, end in before.items() if where[0] in viewed}})
            env = {**(child_env or {}), "MATERIALIZE_CONSUMER_GROUP": view_group, "METRICS_PORT": "0"}
            if views_prefix is not None:
                env["REDIS_KEY_PREFIX"] = views_prefix
            materializer = Child("materialize", ["materialize"], env, log_dir)
            children.append(materializer)
        done = _watch(err, kafka, group, topic, starts, stops, children)
        if not done:
            return _failed(err, children)
        processor.stop()
        if materializer is not None:
            targets = kafka.ends(viewed)
            if not _drain(err, kafka, f"{group}-views", targets, children):
                return _failed(err, children)
            materializer.stop()
    except KeyboardInterrupt:
        err.print(f"interrupted: group {group!r} keeps its committed offsets; run again with --group {group} to go on")
    finally:
        for child in children:
            child.stop()
    after = kafka.ends(outputs)
    produced = dict.fromkeys(outputs, 0)
    for (name, p), end in after.items():
        produced[name] += end - before.get((name, p), 0)  # offsets, transaction markers included
    if produced_out is not None:
        produced_out.update(produced)
    committed = kafka.committed(group, topic)
    ticks = sum(committed.get((topic, p), starts[p]) - starts[p] for p in starts)
    elapsed = time.monotonic() - began
    err.print(f"replayed {ticks:,} ticks in {elapsed:.1f}s under group {group!r}; produced "
              + ", ".join(f"{name} +{count:,}" for name, count in produced.items() if count), markup=False)
    if not existing and not keep_state:
        kafka.delete_topics(kafka.changelogs(group))
        shutil.rmtree(settings.state_dir / group, ignore_errors=True)
    shutil.rmtree(log_dir, ignore_errors=True)
    return EXIT_OK


def _failed(err: Console, children: list[Child]) -> int:
    for child in children:
        if child.failed():
            err.print(f"[red]{child.name} failed[/] (exit {child.process.returncode}):\n{escape(child.tail())}")
    return EXIT_FAILED


def _progress(err: Console) -> Progress:
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("lag {task.fields[lag]:,}"), TimeElapsedColumn(), console=err,
                    disable=not err.is_terminal)


def _watch(err: Console, kafka: Kafka, group: str, topic: str, starts: dict[int, int],
           stops: dict[int, int] | None, children: list[Child]) -> bool:
    """Follow the group's committed offsets until every partition reached its stop; False if a child died."""
    with _progress(err) as progress:
        total = None if stops is None else sum(stops[p] - starts[p] for p in starts)
        task = progress.add_task(f"replay ({group})", total=total, lag=total or 0)
        while True:
            if any(child.failed() or child.process.poll() is not None for child in children):
                return False
            committed = kafka.committed(group, topic)
            position = {p: committed.get((topic, p), starts[p]) for p in starts}
            targets = stops if stops is not None else kafka.watermarks(topic)[1]
            lag = kafka.lag(group, {(topic, p): targets[p] for p in starts})
            done = sum(min(position[p], targets[p]) - starts[p] for p in starts)
            progress.update(task, completed=done, total=total if stops is not None else done + lag, lag=lag)
            if stops is not None and lag == 0:
                return True
            time.sleep(POLL_S)


def _drain(err: Console, kafka: Kafka, group: str, targets: dict[tuple[str, int], int],
           children: list[Child]) -> bool:
    """Wait until the views group has committed every replayed event; False if a child died.

    The processor has stopped, so the targets are final. Once the group has committed nothing for
    :data:`STALL_PROBE_S`, what is left is looked at record by record (:meth:`Kafka.lag` with ``probe``:
    the tail of an aborted transaction holds nothing to read, so nothing will ever be committed past it),
    and every :data:`STALL_REPORT_S` without a commit says which partitions it still waits on.
    """
    with _progress(err) as progress:
        task = progress.add_task(f"views ({group})", total=None, lag=0)
        last: dict[tuple[str, int], int] | None = None
        moved = reported = time.monotonic()
        while True:
            if any(child.failed() for child in children):
                return False
            now = time.monotonic()
            committed = kafka.committed(group)
            if committed != last:  # the group moved on
                last, moved, reported = committed, now, now
            lag = kafka.lag(group, targets, probe=now - moved >= STALL_PROBE_S, committed=committed)
            progress.update(task, lag=lag)
            if lag == 0:
                return True
            if now - reported >= STALL_REPORT_S:
                reported = now
                waiting = ", ".join(f"{topic}[{p}] at {committed.get((topic, p), 0)} of {end}"
                                    for (topic, p), end in sorted(targets.items()) if committed.get((topic, p), 0) < end)
                err.print(f"views ({group}): lag {lag:,}, no commit for {now - moved:.0f}s; waiting on {waiting}",
                          markup=False)
            time.sleep(POLL_S)
