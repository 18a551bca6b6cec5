"""``stockstream runs``: replay a past range into a run's own namespace, and list, show, compare and drop runs.

A run (docs/runs.md) is the real ``stockstream process`` (and ``stockstream materialize``) run
as child processes with ``STOCKSTREAM_RUN=<id>``: its outputs go to the topics
``<prefix>runs.<id>.*`` and the Redis keys under ``<REDIS_KEY_PREFIX>run:<id>:``; the live
topics, views and notifications are never written. ``--into-live`` is the deliberate
exception (a rebuild of the live outputs, asks for confirmation; ``--yes`` for scripts).

Every run is recorded on the compacted ``runs`` topic (``processors/runtime/runs.py``): created
as ``running``, then ``done`` or ``failed`` with the records it produced and when its namespace
expires (``RUN_RETENTION``). ``runs drop`` deletes the run's topics, state and keys and nothing else;
``runs prune`` (and every ``runs start``, before it begins) does the same for every run past its
expiry or abandoned (``processors/core/retention.py``).

Exit codes: 0 done (``diff``: no difference); 1 a run failed (``diff``: differences found);
2 bad input or nothing done.
"""

from __future__ import annotations

import json
import secrets
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.table import Table

from stockstream.commands.run_namespaces import (
    delete_namespace,
    due_runs,
    owned_by,
    prune_quietly,
    prune_runs,
)
from stockstream.console import console
from stockstream.ranges import split_bound

if TYPE_CHECKING:
    from processors.core.rundiff import Span
    from processors.runtime.runs import RunLog
    from processors.stream.settings import ProcessSettings
    from schemas.events import Signal, SignalOutcome
    from schemas.runs import Run, StrategyRef

EXIT_OK, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2
runs_app = typer.Typer(help="Runs: replays into their own namespace; list, show, diff, drop.", no_args_is_help=True)



def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    console(stderr=True).print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _settings(**overrides: Any) -> ProcessSettings:
    from pydantic import ValidationError

    from processors.stream.settings import ProcessSettings

    try:
        return ProcessSettings(**overrides)
    except ValidationError as error:
        raise _fail("bad configuration: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                      for e in error.errors())) from None


def strategy_ref(path: Path | None, timeframes: tuple[str, ...]) -> StrategyRef:
    """The strategy of a run: file, text and version (``processors/core/strategies/versions.py``)."""
    from processors.core.strategies.versions import strategy_file_text, strategy_version
    from schemas.runs import StrategyRef

    if path is None:
        return StrategyRef(version=strategy_version(None, syntax=None, candle_timeframes=timeframes),
                           timeframes=timeframes)
    text, syntax = strategy_file_text(path)
    version = strategy_version(text, syntax=syntax, candle_timeframes=timeframes, source=str(path))
    return StrategyRef(file=str(path), syntax=syntax, text=text, version=version, timeframes=timeframes)  # type: ignore[arg-type]


def _bound(text: str | None) -> tuple[str | None, str | None]:
    """``--from``/``--to``: offsets (``1200``, ``0:1200,1:800``), an event time, a date or a duration ago."""
    return split_bound(text)


def _new_id() -> str:
    return f"r{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"


@runs_app.command("start")
def start(
    from_: Annotated[str | None, typer.Option("--from", help="Start: offsets (0, or 0:1200,1:800), an event time (ISO 8601), a date or a duration ago (2h).", show_default="the log's beginning")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End (exclusive): offsets, an event time, a date or a duration ago.", show_default="the log's end now")] = None,
    warm_from: Annotated[str | None, typer.Option("--warm-from", help="Warm the state up from here: offsets (0 = the log's beginning), a time, 'auto' (the backfill's rule: the midnight before the range's first tick − 1 day − the strategy's warm-up) or 'none' (start cold at --from). Records before --from produce nothing.", show_default="auto")] = None,
    strategy: Annotated[Path | None, typer.Option(help="Strategy file of the run.", show_default="STOCKSTREAM_STRATEGY, else the built-in one")] = None,
    run_id: Annotated[str | None, typer.Option("--id", help="The run's id (1-40 of a-z, 0-9, '-').", show_default="r<time>-<random>")] = None,
    description: Annotated[str, typer.Option(help="What the run is for (shown by runs list/show).")] = "",
    views: Annotated[bool, typer.Option(help="Also materialize the run's views in Redis (under <REDIS_KEY_PREFIX>run:<id>:).")] = True,
    into_live: Annotated[bool, typer.Option("--into-live", help="Write the live topics and views instead (a deliberate rebuild).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm --into-live without asking (scripts).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the finished run's record as JSON.")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="A shadow run: no end, follow live ticks into the run's namespace until stopped (Ctrl-C, SIGTERM).")] = False,
    keep_state: Annotated[bool, typer.Option("--keep-state", hidden=True, help="Keep the run's processing state when it ends (a deployed strategy may serve live).")] = False,
) -> None:
    """Replay a past range of the ticks log with a strategy into the run's own namespace."""
    from processors.runtime.runs import RunLog, RunLogError
    from schemas.runs import InvalidRunIdError, check_run_id
    from spark_jobs.backfill.ranges import RangeError
    from stockstream.replayer import Kafka, ReplayError, resolve_range, run_replay

    err = console(stderr=True)
    try:
        chosen = check_run_id(run_id) if run_id is not None else _new_id()
    except InvalidRunIdError as error:
        raise _fail(str(error)) from None
    base = _settings(**({"strategy_file": strategy} if strategy else {}))
    if base.run_id is not None:
        raise _fail("STOCKSTREAM_RUN is set: runs start makes its own run; unset it")
    if follow and to is not None:
        raise _fail("--follow has no end: give --to or --follow, not both")
    if follow and into_live:
        raise _fail("a shadow run (--follow) writes its own namespace, not live")
    if into_live and not yes:
        if not sys.stdin.isatty():
            raise _fail("--into-live rewrites the live outputs: pass --yes to confirm (no terminal to ask)")
        if not typer.confirm("Write this replay into the LIVE topics and views?", default=False, err=True):
            raise _fail("nothing done")
    settings = base if into_live else _settings(**({"strategy_file": strategy} if strategy else {}), run_id=chosen)
    runs = RunLog(settings)
    try:
        runs.ensure()
        prune_quietly(base, runs)
        if runs.read().get(chosen) is not None:
            raise _fail(f"run {chosen!r} exists: pick another --id, or `stockstream runs drop {chosen}` first")
        reference = strategy_ref(settings.strategy_file, settings.candle_timeframes)
    except RunLogError as error:
        raise _fail(str(error)) from None
    except ValueError as error:  # a strategy file that does not parse
        raise _fail(str(error)) from None
    topic = settings.topics().ticks.name
    kafka = Kafka(settings)
    try:
        from_offset, from_time = _bound(from_)
        to_offset, to_time = _bound(to)
        starts, stops = resolve_range(settings, kafka, topic, from_offset=from_offset, from_time=from_time,
                                      to_offset=to_offset, to_time=to_time, follow=follow)
        warm = _warm_up(err, settings, kafka, topic, warm_from, starts, stops)
        group = (f"{settings.topic_prefix}stockstream-run-{chosen}" if into_live else settings.group_id)
        record = _record(settings, chosen, description, reference, topic, starts, stops, from_time, to_time,
                         into_live=into_live, group=group, views=views, warm=warm,
                         kind="shadow" if follow else "replay")
        runs.publish(record)
        produced: dict[str, int] = {}
        env = {} if into_live else {"STOCKSTREAM_RUN": chosen}
        if warm is not None:
            env["PROCESS_EMIT_FROM"] = ",".join(f"{p}:{o}" for p, o in sorted(starts.items()))
        previous = signal.signal(signal.SIGTERM, _interrupt) if follow else None
        try:
            code = run_replay(err, kafka, settings, topic, group, warm or starts, stops, yes=True, views=views,
                              views_prefix=None, keep_state=keep_state, child_env=env, produced_out=produced)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        finished = datetime.now(UTC)
        retention = timedelta(milliseconds=settings.topics().run_retention_ms)
        # A run stops at the first checkpoint at or past its end, so it may have gone a few records
        # further: the range it records is the one it really covered (its committed offsets).
        covered = record.range
        if covered is not None:
            reached = kafka.committed(group, topic)
            covered = covered.model_copy(update={"end": {p: max(end, reached.get((topic, p), end))
                                                         for p, end in (stops or starts).items()}})
        done = record.model_copy(update={
            "state": ("stopped" if follow else "done") if code == 0 else "failed", "ts_event": finished,
            "range": covered,
            "produced": {name.removeprefix(record.namespace.topic_prefix): count for name, count in produced.items()},
            "expires_at": None if into_live else finished + retention})
        runs.publish(done)
        if views and not into_live and code == 0:
            _expire_views(settings, chosen, finished + retention)
    except (RangeError, ReplayError, RunLogError) as error:
        raise _fail(str(error)) from None
    finally:
        kafka.close()
        runs.close()
    if as_json:
        typer.echo(done.model_dump_json())
    else:
        err.print(f"run {chosen} {done.state}: strategy {reference.version}, outputs under "
                  f"{record.namespace.topic_prefix!r}" + (f" and Redis {record.namespace.redis_prefix!r}"
                                                          if record.namespace.redis_prefix else ""), markup=False)
    if code:
        raise typer.Exit(code)


def _warm_up(err: Any, settings: ProcessSettings, kafka: Any, topic: str, warm_from: str | None,
             starts: dict[int, int], stops: dict[int, int] | None) -> dict[int, int] | None:
    """Where the run's processor starts reading (None: at ``starts``, cold), said on stderr with its cost.

    ``auto`` (the default) is the backfill's rule (``stockstream/warmup.py``), shared with ``strategy deploy``;
    ``none`` starts cold; offsets or a time are taken as given. Raises ``RangeError``/``ReplayError``.
    """
    from processors.core.strategy import StrategyError
    from stockstream.replayer import resolve_range
    from stockstream.warmup import warm_start

    choice = (warm_from or "auto").strip().lower()
    if choice == "none":
        err.print("warm-up: none (--warm-from none): indicators start undefined at --from", markup=False)
        return None
    if choice == "auto":
        ends = stops if stops is not None else kafka.watermarks(topic)[1]
        try:
            chosen = warm_start(settings, starts, ends)
        except StrategyError as error:
            raise _fail(str(error)) from None
        err.print(chosen.describe(), markup=False)
        return chosen.offsets if chosen.records else None
    warm_offset, warm_time = _bound(warm_from)
    found, _ = resolve_range(settings, kafka, topic, from_offset=warm_offset, from_time=warm_time,
                             to_offset=None, to_time=None, follow=True)
    warm = {p: min(found.get(p, starts[p]), starts[p]) for p in starts}
    records = sum(starts[p] - warm[p] for p in starts)
    err.print(f"warm-up: {records:,} records from {','.join(f'{p}:{o}' for p, o in sorted(warm.items()))}"
              " (--warm-from) build the state before the range", markup=False)
    return warm


def _record(settings: ProcessSettings, run_id: str, description: str, strategy: StrategyRef, topic: str,
            starts: dict[int, int], stops: dict[int, int] | None, from_time: str | None, to_time: str | None, *,
            into_live: bool, group: str, views: bool, warm: dict[int, int] | None = None,
            kind: Literal["replay", "shadow"] = "replay") -> Run:
    from processors.materialize.settings import MaterializeSettings
    from schemas.runs import Namespace, Run, RunRange, run_redis_prefix
    from stockstream import __version__
    from stockstream.commands.backfill import parse_time

    redis_live = MaterializeSettings().redis_key_prefix
    now = datetime.now(UTC)
    namespace = Namespace(topic_prefix=settings.topics().derived_prefix,
                          redis_prefix=(run_redis_prefix(redis_live, None if into_live else run_id) if views else None),
                          into_live=into_live)
    return Run(run_id=run_id, kind=kind, state="running", description=description,
               range=RunRange(topic=topic, start=starts, end=stops, warm_from=warm,
                              from_time=parse_time(from_time, "--from"),
                              to_time=parse_time(to_time, "--to")),
               strategy=strategy, code_version=__version__, namespace=namespace, group=group,
               ts_event=now, ts_init=now)


def _interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM ends a shadow run like Ctrl-C: children stopped, the run recorded as stopped."""
    raise KeyboardInterrupt


def _expire_views(settings: Any, run_id: str, when: datetime) -> None:
    """A run never grows live state: every key of its views expires with the run (RUN_RETENTION)."""
    from processors.materialize.settings import MaterializeSettings, redis_client

    views = MaterializeSettings(run_id=run_id)
    client = redis_client(views)
    try:
        for key in client.scan_iter(match=f"{views.view_prefix}*", count=1000):
            client.expireat(key, when)
    finally:
        client.close()


def _runs_log() -> RunLog:
    from processors.runtime.runs import RunLog

    return RunLog(_settings())


@runs_app.command("list")
def list_runs(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False) -> None:
    """Every run of this deployment (and ``live``), newest first."""
    from processors.runtime.runs import RunLogError

    log = _runs_log()
    try:
        snapshot = log.read()
    except RunLogError as error:
        raise _fail(str(error)) from None
    finally:
        log.close()
    records = sorted(snapshot.runs.values(), key=lambda r: r.run.ts_init, reverse=True)
    if as_json:
        for record in records:
            typer.echo(record.run.model_dump_json())
        return
    table = Table("id", "kind", "state", "strategy", "range", "produced", "created", "description")
    table.add_row("live", "live", "serving", "", "", "", "", "the live namespace")
    for record in records:
        run = record.run
        if run.run_id == "live":
            continue
        span = "" if run.range is None else (
            ",".join(f"{p}:{o}" for p, o in sorted(run.range.start.items())) + " → "
            + ("end" if run.range.end is None else ",".join(f"{p}:{o}" for p, o in sorted(run.range.end.items()))))
        table.add_row(run.run_id, run.kind, run.state, run.strategy.version, span,
                      f"{sum(run.produced.values()):,}", f"{run.ts_init:%Y-%m-%d %H:%M:%S}", run.description)
    console().print(table)


@runs_app.command("show")
def show(run_id: Annotated[str, typer.Argument(help="The run's id.")]) -> None:
    """The run's record, as JSON."""
    from processors.runtime.runs import RunLogError

    log = _runs_log()
    try:
        record = log.read().get(run_id)
    except RunLogError as error:
        raise _fail(str(error)) from None
    finally:
        log.close()
    if record is None:
        raise _fail(f"no run {run_id!r} (see `stockstream runs list`)")
    typer.echo(json.dumps(record.run.model_dump(mode="json"), indent=2))


def _live_group(settings: ProcessSettings, record: Any) -> str:
    """The consumer group serving live: the live record's (after a promote), else this environment's processor's."""
    from processors.core.rollout import effective

    if record is None or record.run.live is None:
        return settings.group_id
    return effective(record.run.live, record.timestamp).serving.group


def _run_outputs(settings: ProcessSettings, run_id: str,
                 runs: dict[str, Any]) -> tuple[list[Signal], list[SignalOutcome], Span]:
    """A run's (or live's) signals and signal outcomes, and the input range it covered."""
    from processors.core.rundiff import Span
    from processors.runtime.runs import read_topic_values
    from schemas.runs import LIVE_RUN_ID
    from schemas.upcasters import decode_signal, decode_signal_outcome
    from stockstream.replayer import Kafka

    registry = settings.topics()
    kafka = Kafka(settings)
    try:
        ticks = registry.ticks.name
        if run_id == LIVE_RUN_ID:
            committed = kafka.committed(_live_group(settings, runs.get(LIVE_RUN_ID)), ticks)
            low, _high = kafka.watermarks(ticks)
            span = Span(dict.fromkeys(low, 0), {p: committed.get((ticks, p), 0) for p in low})
            topic = registry.signals.name
            outcomes_topic = registry.signal_outcomes.name
        else:
            record = runs.get(run_id)
            if record is None:
                raise _fail(f"no run {run_id!r} (see `stockstream runs list`)")
            run = record.run
            if run.range is None:
                raise _fail(f"run {run_id!r} has no recorded range")
            span = Span(run.range.start, run.range.end)
            topic = f"{run.namespace.topic_prefix}{registry.signals.name.removeprefix(registry.prefix)}"
            outcomes_topic = (f"{run.namespace.topic_prefix}"
                              f"{registry.signal_outcomes.name.removeprefix(registry.prefix)}")
    finally:
        kafka.close()
    signals = []
    for value in read_topic_values(settings, topic):
        try:
            signals.append(decode_signal(value))
        except ValueError:
            continue  # not a signal this release reads: no position to compare
    outcomes = []
    for value in read_topic_values(settings, outcomes_topic):
        try:
            outcomes.append(decode_signal_outcome(value))
        except ValueError:
            continue  # not an outcome this release reads: not scored
    return signals, outcomes, span


class WindowCloses:
    """``closes`` for :func:`processors.core.rundiff.diff_signals`, from the ticks log.

    Whether a run's input closed the window of a candle signal the other run fired: reads the
    signal's partition of ``ticks`` from the record after the signal's own up to the run's end
    (the log's end for an open one), and stops at the first tick that closes the window
    (:func:`~processors.core.rundiff.closes_window`) — a few records on, unless the run ended first.
    """

    def __init__(self, settings: ProcessSettings, topic: str, timeout_s: float = 120.0) -> None:
        from confluent_kafka import Consumer

        from processors.core.pipeline import PipelineConfig

        self.topic = topic
        self.timeout_s = timeout_s
        # What decides a close: the deployment's grace and the pipeline's bounds (no strategy's).
        self.config = PipelineConfig(candle_timeframes=settings.candle_timeframes, grace_ms=settings.grace_ms)
        self.consumer = Consumer({**settings.client_config(), "group.id": "stockstream-runs-reader",
                                  "enable.auto.commit": False, "isolation.level": "read_committed",
                                  "log_level": 3})

    def close(self) -> None:
        self.consumer.close()

    def __call__(self, signal: Signal, span: Span) -> bool:
        import time

        from confluent_kafka import TopicPartition

        from processors.core.rundiff import closes_window
        from processors.runtime.watermarks import watermarks
        from processors.stream.records import decode_tick
        from schemas.events import Lineage, Tick

        partition = signal.lineage.partition
        start = signal.lineage.offset + 1
        where = TopicPartition(self.topic, partition)
        end = watermarks(self.consumer, where, 30)[1] if span.end is None else span.end.get(partition, 0)
        if start >= end:
            return False
        self.consumer.assign([TopicPartition(self.topic, partition, start)])
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for message in self.consumer.consume(200, timeout=0.5):
                if message.error() is not None:
                    raise _fail(f"cannot read {self.topic}: {message.error()}")
                if message.offset() < start:
                    continue  # fetched for an earlier question, before this assignment
                if message.offset() >= end:
                    return False
                lineage = Lineage(topic=self.topic, partition=partition, offset=message.offset())
                tick = decode_tick(message.value(), message.key(), message.timestamp()[1], lineage)
                if isinstance(tick, Tick) and closes_window(signal, tick, self.config):
                    return True
            if self.consumer.position([where])[0].offset >= end:
                return False  # read_committed: the end may be a transaction marker
        raise _fail(f"{self.topic}[{partition}] was not read up to offset {end} within {self.timeout_s:.0f}s"
                    " (a transaction still open holds it back?)")


def _card_text(card: Any) -> str:
    if card is None:
        return "no outcome"
    factor = card.profit_factor
    return (f"{card.outcomes} outcomes, hit {card.hit_rate:.1%}, mean {card.mean_return:+.4%}, "
            f"median {card.median_return:+.4%}, profit factor " + ("-" if factor is None else f"{factor:.2f}"))


@runs_app.command("diff")
def diff(
    first: Annotated[str, typer.Argument(help="A run's id, or live.")],
    second: Annotated[str, typer.Argument(help="Another run's id, or live.")],
    as_json: Annotated[bool, typer.Option("--json", help="The whole difference as one JSON object.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Signals listed per kind on a terminal.")] = 20,
) -> None:
    """Signals only in A, only in B, and changed (same position, other side or values), and both runs'
    scorecards side by side, over the common range."""
    from processors.core.rundiff import diff_scorecards, diff_signals
    from processors.runtime.runs import RunLogError

    settings = _settings()
    log = _runs_log()
    try:
        runs = log.read().runs
    except RunLogError as error:
        raise _fail(str(error)) from None
    finally:
        log.close()
    signals_a, outcomes_a, span_a = _run_outputs(settings, first, runs)
    signals_b, outcomes_b, span_b = _run_outputs(settings, second, runs)
    closes = WindowCloses(settings, settings.topics().ticks.name)
    try:
        result = diff_signals(signals_a, span_a, signals_b, span_b, closes)
    finally:
        closes.close()
    cards = diff_scorecards(signals_a, outcomes_a, span_a, signals_b, outcomes_b, span_b)
    if as_json:
        typer.echo(json.dumps({"a": first, "b": second, **result.to_json(),
                               "scorecards": [pair.to_json() for pair in cards]}))
    else:
        out = console()
        out.print(f"{first} vs {second}: {result.same:,} signals the same, {len(result.only_a):,} only in {first}, "
                  f"{len(result.only_b):,} only in {second}, {len(result.changed):,} changed", markup=False)
        for label, items in ((first, result.unclosed_a), (second, result.unclosed_b)):
            if items:
                out.print(f"  not compared: {len(items):,} candle signals of {label} on windows the other's input ended"
                          " before closing", markup=False)
        for label, items in ((f"only in {first}", result.only_a), (f"only in {second}", result.only_b)):
            for signal in items[:limit]:
                out.print(f"  {label}: {signal.ts_event.isoformat()} {signal.symbol}@{signal.venue} {signal.timeframe} "
                          f"{signal.rule} {signal.side} {signal.price}", markup=False)
        for a, b in result.changed[:limit]:
            out.print(f"  changed: {a.ts_event.isoformat()} {a.symbol}@{a.venue} {a.timeframe} {a.rule}: "
                      f"{a.side} {a.price} → {b.side} {b.price}", markup=False)
        out.print(f"scorecards over the common range ({len(cards):,}):" if cards
                  else "scorecards over the common range: no outcome in either run", markup=False)
        for pair in cards:
            key = pair.key
            out.print(f"  {key.strategy} {key.timeframe} {key.symbol}@{key.venue} {key.horizon}: "
                      f"{first} {_card_text(pair.a)} | {second} {_card_text(pair.b)}", markup=False)
    if result.differences:
        raise typer.Exit(EXIT_DIFFERENT)


@runs_app.command("drop")
def drop(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Drop without asking (scripts).")] = False,
) -> None:
    """Delete a run's topics, processing state and view keys (and nothing else), then its record."""
    from processors.runtime.runs import RunLogError
    from schemas.runs import InvalidRunIdError, check_run_id
    from stockstream.replayer import Kafka

    try:
        check_run_id(run_id)
    except InvalidRunIdError as error:
        raise _fail(str(error)) from None
    settings = _settings()
    log = _runs_log()
    try:
        snapshot = log.read()
        record = snapshot.get(run_id)
        if record is not None and record.run.namespace.into_live:
            raise _fail(f"run {run_id!r} wrote the live outputs (--into-live): there is nothing of its own to drop")
        view = snapshot.live_view()
        if view is not None and run_id in {s.run_id for s in (view.serving, view.previous) if s is not None}:
            role = "serves live" if run_id == view.serving.run_id else "is what `strategy rollback` returns to"
            raise _fail(f"run {run_id!r} {role}: its state is live state; promote another run before dropping it")
        kafka = Kafka(settings)
        try:
            names, keys = owned_by(settings, kafka, run_id)
            if record is None and not names and not keys:
                raise _fail(f"no run {run_id!r} (see `stockstream runs list`)")
            if not yes:
                if not sys.stdin.isatty():
                    raise _fail(f"pass --yes to drop run {run_id!r} (no terminal to ask)")
                if not typer.confirm(f"Drop run {run_id!r}: {len(names)} topics, {len(keys)} Redis keys?",
                                     default=False, err=True):
                    raise _fail("nothing done")
            delete_namespace(kafka, run_id, names, keys)
        finally:
            kafka.close()
        if record is not None:
            log.remove(run_id)
    except RunLogError as error:
        raise _fail(str(error)) from None
    finally:
        log.close()
    console(stderr=True).print(f"dropped run {run_id}: {len(names)} topics, {len(keys)} Redis keys", markup=False)


@runs_app.command("prune")
def prune(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Prune without asking (scripts, cron).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be pruned.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per pruned (or, with --dry-run, due) run.")] = False,
) -> None:
    """Delete the topics, state, view keys and records of every run past RUN_RETENTION (never live)."""
    from processors.runtime.runs import RunLogError
    from stockstream.replayer import Kafka

    settings = _settings()
    log = _runs_log()
    kafka = Kafka(settings)
    try:
        due = due_runs(settings, log, kafka, datetime.now(UTC))
        if dry_run or not due:
            for run, reason in due:
                typer.echo(json.dumps({"run_id": run.run_id, "reason": reason}) if as_json
                           else f"due: {run.run_id} ({reason})")
            if not due and not as_json:
                console(stderr=True).print("no run is past RUN_RETENTION", markup=False)
            return
        if not yes:
            if not sys.stdin.isatty():
                raise _fail(f"pass --yes to prune {len(due)} run(s) (no terminal to ask)")
            if not typer.confirm(f"Prune {len(due)} run(s): {', '.join(run.run_id for run, _ in due)}?",
                                 default=False, err=True):
                raise _fail("nothing done")
        for item in prune_runs(settings, log, kafka, due):
            if as_json:
                typer.echo(json.dumps(item))
            else:
                console(stderr=True).print(f"pruned run {item['run_id']} ({item['reason']}): {item['topics']} topics, "
                                           f"{item['keys']} Redis keys", markup=False)
    except RunLogError as error:
        raise _fail(str(error)) from None
    finally:
        kafka.close()
        log.close()


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
