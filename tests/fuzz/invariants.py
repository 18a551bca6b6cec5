"""What every parser of outside data must guarantee, checked on whatever it returned for a fuzzed input.

"Never an unhandled exception" is checked by calling the parser at all (an exception fails the
test); these helpers check the rest: every refusal carries a code of the closed set, becomes a
dead letter that really encodes (no lone surrogate or other unserializable text in it), and
every accepted value is a valid event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

from processors.ingest.reasons import ALL_REASONS
from processors.ingest.sources.base import (
    Accepted,
    BudgetLeft,
    Outcome,
    Reconnecting,
    Rejected,
    SequenceGap,
    SourceProblem,
)
from processors.runtime.observability import redact
from schemas.events import DeadLetter, Tick, encode

NOW = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)


def utf8_clean(text: str) -> bool:
    """``text`` can be written to a log, a JSON event or an HTTP body (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_tick(tick: Tick, allowed_symbols: Iterable[str] | None = None) -> None:
    assert math.isfinite(tick.price) and tick.price > 0, tick
    for value in (tick.volume, tick.bid, tick.ask):
        assert value is None or math.isfinite(value), tick
    assert tick.ts_event.tzinfo is not None and tick.ts_init.tzinfo is not None
    if allowed_symbols is not None:
        assert tick.symbol in set(allowed_symbols), tick.symbol
    assert Tick.model_validate_json(encode(tick)) == tick  # what goes on the log reads back the same


def dead_letter_of(source: str, rejected: Rejected) -> DeadLetter:
    """The dead letter the ingest service publishes for ``rejected`` (``IngestService.handle``)."""
    return DeadLetter(source=source, reason=rejected.reason, detail=redact(rejected.detail),
                      raw=redact(rejected.raw), ts_init=NOW)


def check_outcomes(source: str, outcomes: Iterable[Outcome], allowed_symbols: Iterable[str] | None = None) -> None:
    """Every outcome of an ingest source is one of the known kinds and publishable as it is."""
    for outcome in outcomes:
        assert isinstance(outcome, Accepted | Rejected | SequenceGap | SourceProblem | Reconnecting | BudgetLeft), outcome
        if isinstance(outcome, Accepted):
            check_tick(outcome.tick, allowed_symbols)
        elif isinstance(outcome, Rejected):
            assert outcome.reason in ALL_REASONS, outcome.reason
            assert outcome.detail, "a rejection says why"
            letter = dead_letter_of(source, outcome)
            assert DeadLetter.model_validate_json(encode(letter)) == letter
        elif isinstance(outcome, SourceProblem):
            # Logged to stderr, which backslash-escapes what UTF-8 cannot encode: any text is fine.
            assert outcome.kind and utf8_clean(outcome.kind) and isinstance(outcome.detail, str), outcome
        elif isinstance(outcome, SequenceGap):
            assert outcome.received > outcome.expected >= 0


def check_dead_letter(letter: DeadLetter, reasons: Iterable[str]) -> None:
    assert letter.reason in set(reasons), letter.reason
    assert DeadLetter.model_validate_json(encode(letter)) == letter
