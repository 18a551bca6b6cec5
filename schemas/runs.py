"""Runs: every replay, backfill and shadow strategy is a run, described by a :class:`Run` event.

A run computes derived events from a range of the ``ticks`` log into its **own namespace** —
topics ``runs.<id>.*``, Redis keys under ``<prefix>run:<id>:``, Parquet under ``runs/<id>/`` —
never into the live outputs unless someone asked for it (``into_live``). Run metadata is an event
on the compacted ``runs`` topic (key = run id, one partition, broker-assigned timestamps), so the
list survives restarts and every service reads the same one. A dropped run is a tombstone.

The record under the key ``live`` (:data:`LIVE_RUN_ID`) describes the live namespace itself:
which processing run serves it now (:class:`Serving`: its consumer group, strategy and the input
offsets from which it writes live), what served before, and a strategy hand-over in flight
(:class:`Handover`). Who reads it and how a hand-over is decided: ``processors/core/rollout.py``.

Every model here is a frozen fact with a ``schema_version`` and its upcaster chain
(``schemas/upcasters.py``: ``RUN_CHAIN``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.events import Event, Timeframe, UtcDatetime

RUN_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
"""A run id: lower-case letters, digits and ``-`` (it becomes part of topic names and Redis keys)."""
LIVE_RUN_ID = "live"
"""The live namespace, listed and compared like a run (``runs diff live ID``)."""
VERSION_PATTERN = r"^[0-9a-f]{16}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)

RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN)]
StrategyVersion = Annotated[str, Field(pattern=VERSION_PATTERN)]
Offsets = dict[int, Annotated[int, Field(ge=0)]]
"""Offsets per partition of the ticks topic (JSON object keys are the partition numbers)."""
RunKind = Literal["live", "replay", "backfill", "shadow"]
RunState = Literal["running", "done", "failed", "stopped", "serving", "retired"]


class InvalidRunIdError(ValueError):
    """A run id that does not match :data:`RUN_ID_PATTERN` (or names the live namespace where a run is meant)."""


def check_run_id(run_id: object, *, allow_live: bool = False) -> str:
    """``run_id`` unchanged when valid; raises :class:`InvalidRunIdError` (the message is safe to show)."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InvalidRunIdError(f"run id {run_id!r} must be 1-40 lower-case letters, digits or '-'"
                                " (starting with a letter or digit)")
    if run_id == LIVE_RUN_ID and not allow_live:
        raise InvalidRunIdError("'live' names the live namespace, not a run")
    return run_id


def run_redis_prefix(live_prefix: str, run_id: str | None) -> str:
    """The Redis key prefix of a run's views: ``<live prefix>run:<id>:`` (the live prefix itself for None)."""
    return live_prefix if run_id is None else f"{live_prefix}run:{check_run_id(run_id)}:"


class StrategyRef(Event):
    """The strategy a run computes with: where it came from, its version, and its text (so any service can run it).

    ``version`` is :func:`processors.core.strategies.versions.strategy_version` of the file's
    content and ``timeframes`` (the candle timeframes it ran with): equal definitions, equal
    versions. ``text`` is None for the built-in default strategy.
    """

    schema_version: Literal[1] = 1
    file: str | None = None
    syntax: Literal["toml", "yaml"] | None = None
    text: str | None = None
    version: StrategyVersion
    timeframes: tuple[Timeframe, ...] = ()

    @model_validator(mode="after")
    def _text_with_syntax(self) -> StrategyRef:
        if (self.text is None) != (self.syntax is None):
            raise ValueError("a strategy's text and syntax come together")
        return self


class RunRange(Event):
    """The input range of a run, as offsets of the ticks topic (per partition).

    Outputs are written for records at ``start <= offset < end`` (``end`` None: open, the run
    follows the log); records from ``warm_from`` to ``start`` only warm the state up (no output).
    ``from_time``/``to_time`` keep the event times the range was asked for, when it was.
    """

    schema_version: Literal[1] = 1
    topic: str
    start: Offsets
    end: Offsets | None = None
    warm_from: Offsets | None = None
    from_time: UtcDatetime | None = None
    to_time: UtcDatetime | None = None


class Namespace(Event):
    """Where a run's outputs are: topic name prefix, Redis key prefix, Parquet folder.

    ``topic_prefix`` is put before the live base names (``indicators``, ``signals``,
    ``candles.1m`` …): ``<deployment prefix>runs.<id>.`` for a run, the deployment prefix itself
    when ``into_live`` (a deliberate rebuild of the live outputs).
    """

    schema_version: Literal[1] = 1
    topic_prefix: str
    redis_prefix: str | None = None
    parquet: str | None = None
    into_live: bool = False


class Serving(Event):
    """The processing run that writes the live outputs: its group, its strategy, from which offsets on.

    ``switch`` is where it took over (per partition: records at or after it go to the live topics,
    earlier ones to its own namespace); None for the first deployment, which serves from the start.
    """

    schema_version: Literal[1] = 1
    run_id: RunId
    group: Annotated[str, Field(min_length=1, max_length=200)]
    strategy: StrategyRef
    switch: Offsets | None = None
    epoch: Annotated[int, Field(ge=0)] = 0
    since: UtcDatetime


class Handover(Event):
    """A strategy hand-over in flight (``stockstream strategy promote``), decided by the log.

    Phases: ``handover`` — the incoming run's processors stop; ``fence`` — the serving run's
    processors stop; ``decided`` — ``decision`` serves from its switch offsets, **if this record's
    broker timestamp is at or before ``deadline``** (else the hand-over is void and ``current``
    keeps serving). Every reader applies the same rule to the same record, so all agree.
    """

    schema_version: Literal[1] = 1
    epoch: Annotated[int, Field(ge=1)]
    phase: Literal["handover", "fence", "decided"]
    to_run: RunId
    to_group: Annotated[str, Field(min_length=1, max_length=200)]
    deadline: UtcDatetime
    decision: Serving | None = None

    @model_validator(mode="after")
    def _decision_when_decided(self) -> Handover:
        if (self.phase == "decided") != (self.decision is not None):
            raise ValueError("a decided hand-over carries its decision, and only then")
        return self


class LiveState(Event):
    """What the ``live`` record holds: who serves now, who served before, a hand-over in flight."""

    schema_version: Literal[1] = 1
    current: Serving
    previous: Serving | None = None
    pending: Handover | None = None


class Run(Event):
    """One run (or, under ``run_id`` = ``live``, the live namespace); the value of a ``runs`` record.

    ``ts_init`` is when the run was created, ``ts_event`` when this record's state was reached.
    ``expires_at``: when its namespace may be deleted (``RUN_RETENTION`` after it stopped; None while
    a shadow runs, and for ``live``). ``produced`` counts output records by kind.
    """

    schema_version: Literal[1] = 1
    run_id: Annotated[str, Field(pattern=RUN_ID_PATTERN)]
    kind: RunKind
    state: RunState
    description: Annotated[str, Field(max_length=2000)] = ""
    range: RunRange | None = None
    strategy: StrategyRef
    code_version: Annotated[str, Field(min_length=1, max_length=200)]
    namespace: Namespace
    group: Annotated[str, Field(max_length=200)] | None = None
    expires_at: UtcDatetime | None = None
    produced: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    detail: Annotated[str, Field(max_length=4000)] = ""
    live: LiveState | None = None
    ts_event: UtcDatetime
    ts_init: UtcDatetime

    @model_validator(mode="after")
    def _live_record(self) -> Run:
        is_live = self.run_id == LIVE_RUN_ID
        if is_live != (self.kind == "live") or is_live != (self.live is not None):
            raise ValueError("the 'live' record (and only it) is of kind live and holds the live state")
        return self
