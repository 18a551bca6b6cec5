"""The small interface every source implements, and the outcomes it yields.

A source is an object with a ``name`` (the ``Tick.source`` value and the metric label),
the bounded set of ``symbols`` it can emit (``None`` when the input decides, as for a
replayed file) and ``stream()``: an async iterator of outcomes. The service turns
outcomes into Kafka records, metrics and log lines; sources never touch Kafka or
Prometheus. A finite source (a file, a simulator with a count) ends its iterator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from schemas.events import Tick

RAW_LIMIT = 64 * 1024  # a dead letter's raw payload is clipped here to stay far below Kafka's 1 MiB


@dataclass(frozen=True, slots=True)
class Accepted:
    """A validated tick, ready to publish."""

    tick: Tick


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record refused with a stable ``reason``; ``raw`` is the payload as received."""

    reason: str
    detail: str
    raw: str


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Ids ``expected`` … ``received - 1`` of ``symbol`` never arrived."""

    symbol: str
    expected: int
    received: int

    @property
    def missing(self) -> int:
        return self.received - self.expected


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """Something went wrong talking to the source (not a bad record); ``kind`` is a stable label."""

    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The source lost its connection and retries after ``delay_seconds``."""

    delay_seconds: float
    attempt: int


@dataclass(frozen=True, slots=True)
class BudgetLeft:
    """Requests left in the source's daily API budget."""

    remaining: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Every record yielded before this one may be remembered as done: ``save`` it once Kafka acknowledged them.

    Yielded by a source that resumes after a restart (the file source); ``save`` raises if the position
    cannot be written (the source is then restarted and re-reads from the last saved one).
    """

    what: str  # for log lines: the file's name
    line: int
    save: Callable[[], None]


Outcome = Accepted | Rejected | SequenceGap | SourceProblem | Reconnecting | BudgetLeft | Checkpoint


class Source(Protocol):
    name: str
    symbols: tuple[str, ...] | None

    def stream(self) -> AsyncIterator[Outcome]: ...


def raw_text(payload: str | bytes) -> str:
    """A payload as text for a dead letter: undecodable bytes backslash-escaped, clipped at 64 KiB."""
    text = payload.decode("utf-8", errors="backslashreplace") if isinstance(payload, bytes) else payload
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT] + "…[clipped]"
