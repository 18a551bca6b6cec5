"""``stockstream query scorecard [--strategy S] [--symbol SYM[@venue]] [--horizon H] [--json]``.

Reads the whole ``signals.outcomes`` topic (read_committed, no consumer-group commit, so the
services' offsets are never disturbed) up to its end offsets at start, and prints the scorecards
of :mod:`processors.core.scorecard` — one row per (strategy, timeframe, instrument, horizon).
A record that does not decode is counted and reported on stderr, never silently skipped.
Exit 1 when Kafka or the topic cannot be reached, 2 for invalid options.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stockstream.console import console


def read_outcomes(settings: Any) -> tuple[list[Any], int]:
    """Every committed ``SignalOutcome`` of the topic up to its end offsets now, and how many did not decode."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
    from pydantic import ValidationError

    from processors.runtime.watermarks import watermarks
    from schemas.upcasters import UnsupportedSchemaVersionError, decode_signal_outcome

    name = settings.topics().signal_outcomes.name
    consumer = Consumer({**settings.client_config(), "group.id": f"stockstream-scorecard-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed", "log_level": 3})
    outcomes: list[Any] = []
    bad = 0
    try:
        try:
            metadata = consumer.list_topics(name, timeout=10)
        except KafkaException as error:
            console(stderr=True).print(f"[red]cannot reach Kafka at {escape(settings.bootstrap_servers)}:[/]"
                                       f" {escape(str(error))}")
            raise typer.Exit(1) from None
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            console(stderr=True).print(f"[red]topic {escape(name)} does not exist (yet)[/]")
            raise typer.Exit(1)
        # read_committed: the last stable offset is where a committed reader stops.
        ends = {p: watermarks(consumer, TopicPartition(name, p), 10)[1] for p in topic.partitions}
        waiting = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in waiting])
        idle = 0
        while waiting and idle < 20:  # 10 s without a record: the rest were aborted transactions' markers
            batch = consumer.consume(1000, timeout=0.5)
            idle = 0 if batch else idle + 1
            for message in batch:
                if message.error() is not None:
                    continue
                if message.offset() + 1 >= ends[message.partition()]:
                    waiting.discard(message.partition())
                try:
                    outcomes.append(decode_signal_outcome(message.value() or b""))
                except (ValidationError, UnsupportedSchemaVersionError, ValueError):
                    bad += 1
            for partition in list(waiting):
                position = consumer.position([TopicPartition(name, partition)])[0].offset
                if position >= ends[partition]:
                    waiting.discard(partition)
    finally:
        consumer.close()
    return outcomes, bad


def scorecard(
    strategy: Annotated[str | None, typer.Option("--strategy", help="Only this strategy.")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol, or SYMBOL@venue.")] = None,
    horizon: Annotated[str | None, typer.Option("--horizon", help="Only this horizon (1m, 5m, 1h, 1d…).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per card instead of a table.")] = False,
) -> None:
    """Hit rate, mean/median return and profit factor of every strategy's signals, from the log."""
    from processors.core.scorecard import Scorecards
    from processors.runtime.settings import KafkaSettings
    from schemas.symbols import InvalidSymbolError, normalize_symbol

    wanted_venue = None
    if symbol is not None:
        name, _, wanted_venue = symbol.partition("@")
        try:
            symbol = normalize_symbol(name)
        except InvalidSymbolError as error:
            raise typer.BadParameter(str(error), param_hint="--symbol") from None
    outcomes, bad = read_outcomes(KafkaSettings())
    chosen = [o for o in outcomes
              if (strategy is None or o.strategy == strategy) and (symbol is None or o.symbol == symbol)
              and (not wanted_venue or o.venue == wanted_venue) and (horizon is None or o.horizon == horizon)]
    cards = Scorecards().extend(chosen).cards()
    if bad:
        console(stderr=True).print(f"[yellow]{bad} record(s) of signals.outcomes did not decode and were left out[/]")
    if as_json:
        for card in cards:
            row = {**card.key._asdict(), **{k: v for k, v in card._asdict().items() if k != "key"}}
            if row["profit_factor"] is not None and not math.isfinite(row["profit_factor"]):
                row["profit_factor"] = "inf"  # losses too small to divide by: JSON has no infinity
            typer.echo(json.dumps(row))
        return
    table = Table(box=None, pad_edge=False)
    for column in ("strategy", "timeframe", "instrument", "horizon", "outcomes", "hit rate", "mean", "median",
                   "profit factor", "versions"):
        table.add_column(column, no_wrap=True)
    for card in cards:
        key = card.key
        table.add_row(Text(key.strategy), Text(key.timeframe), Text(f"{key.symbol}@{key.venue}"), Text(key.horizon),
                      str(card.outcomes), f"{card.hit_rate:.1%}", f"{card.mean_return:+.4%}", f"{card.median_return:+.4%}",
                      "-" if card.profit_factor is None else f"{card.profit_factor:.2f}", Text(",".join(card.versions)))
    console().print(table)
