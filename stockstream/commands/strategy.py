"""``stockstream strategy``: a new strategy reaches live by a warm shadow run and a hand-over, never a cold start.

- ``deploy FILE --shadow`` starts a shadow run (``runs start --follow``, docs/runs.md) of the
  strategy: its state warms up from the log by the backfill's rule (from the midnight before the
  log's newest tick − 1 day − the strategy's warm-up, ``spark_jobs/backfill/plan.py``), then it
  follows live ticks into its own namespace. It runs in the foreground (Ctrl-C or SIGTERM stop it);
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


def warm_from_offsets(settings: ProcessSettings, strategy_file: Path, ends: dict[int, int]) -> dict[int, int]:
    """Where a shadow starting at ``ends`` warms up from: the backfill's rule over the strategy's indicators."""
    from processors.core.strategy import load_strategy
    from schemas.symbols import normalize_symbol
    from schemas.timeframes import timeframe_ms
    from spark_jobs.backfill.plan import Warmup
    from spark_jobs.backfill.ranges import RangeRequest, resolve_range
    from spark_jobs.settings import SparkJobSettings

    strategy = load_strategy(strategy_file)
    specs = [strategy.indicators.spec(), *(strategy.for_symbol(normalize_symbol(raw)).indicators.spec()
                                           for raw in strategy.symbols)]
    warmup = Warmup.for_specs(specs, [timeframe_ms(tf) * 1000 for tf in settings.candle_timeframes])
    # The newest tick of each partition dates the start; an empty partition warms from its beginning.
    newest = {p: end - 1 for p, end in ends.items() if end > 0}
    found = resolve_range(settings, RangeRequest(from_offset=newest or None), warmup.duration_us,
                          round(SparkJobSettings().clock_skew_s * 1e6))
    return {p: min(found.read_start.get(p, 0), end) for p, end in ends.items()}


@strategy_app.command("deploy")
def deploy(
    file: Annotated[Path, typer.Argument(help="The strategy file (TOML or YAML, docs/core.md).")],
    shadow: Annotated[bool, typer.Option("--shadow", help="Start it as a shadow run beside live (the only way in).")] = False,
    run_id: Annotated[str | None, typer.Option("--id", help="The shadow run's id (1-40 of a-z, 0-9, '-').", show_default="r<time>-<random>")] = None,
    description: Annotated[str, typer.Option(help="What the new strategy is for (shown by runs list/show).")] = "",
    views: Annotated[bool, typer.Option(help="Also materialize the shadow's views (under <REDIS_KEY_PREFIX>run:<id>:).")] = True,
) -> None:
    """Start a shadow run of FILE: warm from the log, then follow live ticks in its own namespace."""
    from processors.runtime.runs import RunLogError
    from spark_jobs.backfill.ranges import RangeError
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
        warm = warm_from_offsets(settings, file, ends)
    except (RangeError, ReplayError, RunLogError, ValueError) as error:
        raise _fail(str(error)) from None
    finally:
        kafka.close()
    console(stderr=True).print(f"shadow of {file}: warms up from {_spec(warm)}, its own outputs from"
                               f" {_spec(ends)} on", markup=False)
    runs.start(from_=_spec(ends), to=None, warm_from=_spec(warm), strategy=file, run_id=run_id,
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
        err = console(stderr=True)
        driver = Handover(settings, log, view, target, timeout_s=timeout_s, code_version=__version__,
                          say=lambda text: err.print(text, markup=False))
        try:
            serving = driver.run()
        finally:
            driver.close()
        _record_states(log, snapshot, serving=serving.run_id, demoted=view.serving.run_id)
    except (HandoverError, RunLogError, RolloutError) as error:
        raise _fail(str(error), EXIT_NOT_DONE) from None
    finally:
        log.close()
    typer.echo(f"{serving.run_id} serves live from {_spec(dict(serving.switch or {}))} (strategy"
               f" {serving.strategy.version}); {view.serving.run_id} follows in runs.{view.serving.run_id}.*")


def _record_states(log: RunLog, snapshot: RunSnapshot, *, serving: str, demoted: str) -> None:
    """``runs list`` shows which shadow serves: its record ``serving``, the one it replaced ``running`` again.

    Informational only (the ``live`` record decides); a command killed before this leaves them stale.
    """
    from datetime import UTC, datetime

    for run_id, state in ((serving, "serving"), (demoted, "running")):
        record = snapshot.get(run_id)
        if record is not None and record.run.kind == "shadow" and record.run.state in ("running", "serving"):
            log.publish(record.run.model_copy(update={"state": state, "ts_event": datetime.now(UTC)}))


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
