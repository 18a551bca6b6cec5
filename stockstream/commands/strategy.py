"""``stockstream strategy``: a new strategy reaches live by a warm shadow run and a hand-over, never a cold start.

- ``deploy FILE --shadow`` starts a shadow run (``runs start --follow``, docs/runs.md) of the
  strategy: its state warms up from the log by the backfill's rule, ``runs start``'s default (from
  the midnight before the log's newest tick − 1 day − the strategy's warm-up, ``stockstream/warmup.py``),
  then it follows live ticks into its own namespace. It runs in the foreground (Ctrl-C or SIGTERM stop it);
  once promoted, it is the live processor.
- ``promote ID`` hands live over to the shadow run ``ID`` (``stockstream/handover.py``): from the
  switch offsets on its outputs go to the live topics, nothing older is re-published, and its
  state (warm: indicators defined, today's daily summary continued) is the live state.
- ``rollback`` hands live back to the run that served before, the same way (that run kept its
  state warm, writing its own namespace ``runs.<its id>.*``).

Exit codes: 0 done; 1 the hand-over did not happen (the serving run still serves); 2 bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from stockstream.console import console

if TYPE_CHECKING:
    from processors.core.rollout import LiveView
    from processors.runtime.runs import RunLog, RunSnapshot
    from processors.stream.settings import ProcessSettings

EXIT_OK, EXIT_NOT_DONE, EXIT_USAGE = 0, 1, 2
strategy_app = typer.Typer(help="Strategy rollout: deploy a shadow, promote it to live, roll back.",
                           no_args_is_help=True)


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    console(stderr=True).print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(code)


@strategy_app.command("deploy")
def deploy(
    file: Annotated[Path, typer.Argument(help="The strategy file (TOML or YAML, docs/core.md).")],
    shadow: Annotated[bool, typer.Option("--shadow", help="Start it as a shadow run beside live (the only way in).")] = False,
    run_id: Annotated[str | None, typer.Option("--id", help="The shadow run's id (1-40 of a-z, 0-9, '-').", show_default="r<time>-<random>")] = None,
    description: Annotated[str, typer.Option(help="What the new strategy is for (shown by runs list/show).")] = "",
    views: Annotated[bool, typer.Option(help="Also materialize the shadow's views (under <REDIS_KEY_PREFIX>run:<id>:).")] = True,
) -> None:
    """Start a shadow run of FILE: warm from the log, then follow live ticks in its own namespace."""
    from stockstream.commands import runs
    from stockstream.replayer import Kafka, ReplayError

    if not shadow:
        raise _fail("a strategy reaches live through a shadow run: pass --shadow, then `stockstream strategy"
                    " promote ID` once it looks right (`stockstream runs diff live ID`)")
    if not file.is_file():
        raise _fail(f"{file}: no such strategy file")
    settings = runs._settings(strategy_file=file)
    kafka = Kafka(settings)
    try:
        _low, ends = kafka.watermarks(settings.topics().ticks.name)
    except ReplayError as error:
        raise _fail(str(error)) from None
    finally:
        kafka.close()
    console(stderr=True).print(f"shadow of {file}: its own outputs from {_spec(ends)} on", markup=False)
    # The warm-up is runs start's default, the backfill's rule (stockstream/warmup.py): dated by the newest ticks.
    runs.start(from_=_spec(ends), to=None, warm_from="auto", strategy=file, run_id=run_id,
               description=description or f"shadow of {file.name}", views=views, into_live=False, yes=False,
               as_json=False, follow=True, keep_state=True)


def _spec(offsets: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(offsets.items()))


def _read(log: RunLog) -> RunSnapshot:
    from processors.runtime.runs import RunLogError

    try:
        return log.read()
    except RunLogError as error:
        raise _fail(str(error)) from None


def _current_view(settings: ProcessSettings, snapshot: RunSnapshot) -> LiveView:
    """The live view; before the first hand-over, the live processor of this environment serves."""
    from datetime import UTC, datetime

    from processors.core.rollout import LiveView
    from schemas.runs import Serving
    from stockstream.commands.runs import strategy_ref

    view = snapshot.live_view()
    if view is not None:
        return view
    live = settings.model_copy(update={"run_id": None})
    reference = strategy_ref(live.strategy_file, live.candle_timeframes)
    return LiveView(Serving(run_id=f"live-{reference.version}", group=live.group_id, strategy=reference,
                            since=datetime.now(UTC)), None, None)


def _hand_over(target_run: str | None, timeout_s: float, *, rollback: bool) -> None:
    from datetime import UTC, datetime

    from processors.core.retention import live_processor_record
    from processors.core.rollout import RolloutError
    from processors.runtime.runs import RunLog, RunLogError
    from stockstream import __version__
    from stockstream.commands.runs import _settings
    from stockstream.handover import Handover, HandoverError, Target

    settings = _settings()
    if settings.run_id is not None:
        raise _fail("STOCKSTREAM_RUN is set: promote and rollback act on live; unset it")
    log = RunLog(settings)
    try:
        log.ensure()
        snapshot = _read(log)
        view = _current_view(settings, snapshot)
        if view.pending is not None:
            raise _fail(f"a hand-over to {view.pending.to_run!r} is in flight until {view.pending.deadline:%H:%M:%S}"
                        " UTC: wait for it to finish or pass its deadline", EXIT_NOT_DONE)
        if rollback:
            previous = view.previous
            if previous is None:
                raise _fail("nothing to roll back to: no run served live before the current one")
            target = Target(previous.run_id, previous.group, previous.strategy)
        else:
            record = snapshot.get(target_run or "")
            if record is None or record.run.kind != "shadow" or record.run.group is None:
                raise _fail(f"no shadow run {target_run!r} (see `stockstream runs list`; start one with"
                            " `stockstream strategy deploy FILE --shadow`)")
            if record.run.state not in ("running", "serving"):  # "serving" after a rollback the command did not record
                raise _fail(f"shadow run {target_run!r} is {record.run.state}: only a running shadow can take over")
            target = Target(record.run.run_id, record.run.group, record.run.strategy)
        if snapshot.get(view.serving.run_id) is None:  # the first promote: the live processor gets a record
            log.publish(live_processor_record(view.serving, settings.topic_prefix, __version__, datetime.now(UTC)))
            snapshot = _read(log)
        err = console(stderr=True)
        driver = Handover(settings, log, view, target, timeout_s=timeout_s, code_version=__version__,
                          say=lambda text: err.print(text, markup=False))
        try:
            serving = driver.run()
        finally:
            driver.close()
        _record_states(settings, log, snapshot, serving=serving.run_id, view=view)
    except (HandoverError, RunLogError, RolloutError) as error:
        raise _fail(str(error), EXIT_NOT_DONE) from None
    finally:
        log.close()
    typer.echo(f"{serving.run_id} serves live from {_spec(dict(serving.switch or {}))} (strategy"
               f" {serving.strategy.version}); {view.serving.run_id} follows in runs.{view.serving.run_id}.*")


def _record_states(settings: ProcessSettings, log: RunLog, snapshot: RunSnapshot, *, serving: str,
                   view: LiveView) -> None:
    """``runs list`` shows which shadow serves: its record ``serving``, the one it replaced ``running`` again,
    and a live processor the ``live`` record no longer names ``retired`` (its namespace then expires
    with ``RUN_RETENTION``; ``processors/core/retention.py``: ``after_handover``).

    Informational only (the ``live`` record decides); a command killed before this leaves them stale,
    and ``runs prune`` still bounds them (the abandoned rule).
    """
    from datetime import UTC, datetime, timedelta

    from processors.core.retention import after_handover

    runs = {run_id: record.run for run_id, record in snapshot.runs.items()}
    retention = timedelta(milliseconds=settings.topics().run_retention_ms)
    for record in after_handover(runs, serving, view.serving.run_id, view.previous, settings.topic_prefix,
                                 datetime.now(UTC), retention):
        log.publish(record)


TIMEOUT = typer.Option("--timeout", min=1.0, max=3600.0,
                       help="Seconds the hand-over may take; past them it is void and the serving run resumes.")


@strategy_app.command("promote")
def promote(
    run_id: Annotated[str, typer.Argument(help="The shadow run to make live (from `stockstream runs list`).")],
    timeout_s: Annotated[float, TIMEOUT] = 60.0,
) -> None:
    """Hand live over to shadow run ID: its warm state serves from the switch point, nothing older re-published."""
    _hand_over(run_id, timeout_s, rollback=False)


@strategy_app.command("rollback")
def rollback(timeout_s: Annotated[float, TIMEOUT] = 60.0) -> None:
    """Hand live back to the run that served before the last promote, the same way."""
    _hand_over(None, timeout_s, rollback=True)


def register(app: typer.Typer) -> None:
    app.add_typer(strategy_app, name="strategy")
