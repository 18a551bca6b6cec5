"""``stockstream tail``: print the records of a topic as they arrive (rich table or JSON lines).

Topic names resolve through ``KafkaSettings.topics()`` (prefix and ``KAFKA_TOPIC`` apply):
``ticks``, ``ticks.dlq``, ``candles.<tf>``, ``indicators``, ``signals``, ``signals.outcomes``,
``aggregates.daily``, ``views.dlq``, ``notifications.dlq`` (every topic of the deployment). It
reads without a consumer group commit, so it never disturbs the services' offsets. Values are
decoded through their type's upcaster chain (:mod:`schemas.upcasters`), so a record of an earlier
release shows as the current version (``"upcast_from": 1`` in ``--json``); one that does not
decode is shown as it is.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stockstream.console import console

if TYPE_CHECKING:  # the schemas and Kafka settings are imported when the command runs (stockstream/cli.py)
    from schemas.events import Event
    from schemas.topics import TopicRegistry, TopicSpec

# Columns worth showing per value model; anything else shows compact JSON.
COLUMNS: dict[str, tuple[str, ...]] = {
    "Tick": ("ts_event", "symbol", "venue", "price", "volume", "source", "source_id"),
    "DeadLetter": ("ts_init", "source", "reason", "detail", "raw"),
    "Candle": ("ts_open", "symbol", "venue", "timeframe", "open", "high", "low", "close", "volume"),
    "IndicatorSnapshot": ("ts_event", "symbol", "venue", "timeframe", "price", "values"),
    "Signal": ("ts_event", "symbol", "venue", "timeframe", "rule", "side", "price"),
    "SignalOutcome": ("ts_event", "symbol", "venue", "strategy", "timeframe", "side", "horizon", "return_net"),
    "DailySummary": ("date", "symbol", "venue", "open", "close", "vwap", "volume", "buy_count", "sell_count"),
}


def resolve_topic(registry: TopicRegistry, name: str) -> TopicSpec:
    """The spec of a logical topic name (``ticks``, ``candles.1m`` …); raises ``typer.BadParameter``."""
    fixed = {
        "ticks": lambda: registry.ticks,
        "ticks.dlq": lambda: registry.ticks_dlq,
        "indicators": lambda: registry.indicators,
        "signals": lambda: registry.signals,
        "signals.outcomes": lambda: registry.signal_outcomes,
        "aggregates.daily": lambda: registry.aggregates_daily,
        "views.dlq": lambda: registry.views_dlq,
        "notifications.dlq": lambda: registry.notifications_dlq,
    }
    if name in fixed:
        return fixed[name]()
    if name.startswith("candles."):
        try:
            return registry.candles(name.removeprefix("candles."))
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
    known = ", ".join([*fixed, "candles.<tf>"])
    raise typer.BadParameter(f"unknown topic {name!r}; known: {known}")


def _cell(value: Any, width: int = 60) -> Text:
    """A table cell as plain text: a payload is data, never rich markup (a DLQ value may hold ``[/x]``)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return Text(text if len(text) <= width else text[: width - 1] + "…")


def tail(
    topic: Annotated[str, typer.Option("--topic", help="ticks, ticks.dlq, candles.<tf>, indicators, signals, signals.outcomes, aggregates.daily, views.dlq, notifications.dlq")] = "ticks",
    start: Annotated[str, typer.Option("--from", help="Where to start: end (new records only) or beginning (the oldest record).")] = "end",
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Exit after N records.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
    idle_exit: Annotated[float | None, typer.Option("--idle-exit", min=0.1, help="Exit after this many seconds without a record.")] = None,
) -> None:
    """Print the records of a topic as they arrive (Ctrl-C stops)."""
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, TopicPartition

    from processors.runtime.kafka_admin import KafkaUnavailableError, count_brokers
    from processors.runtime.masking import unreachable
    from processors.runtime.settings import KafkaSettings

    if start not in ("beginning", "end"):
        raise typer.BadParameter(f"{start!r}: tail starts at the log's beginning or end", param_hint="--from")
    settings = KafkaSettings()
    spec = resolve_topic(settings.topics(), topic)
    try:
        count_brokers(settings)
    except KafkaUnavailableError as error:  # says what failed (connection refused…) and what to do
        console(stderr=True).print(str(error), markup=False, style="red")
        raise typer.Exit(1) from None
    consumer = Consumer({
        **settings.client_config(), "group.id": f"stockstream-tail-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "isolation.level": "read_committed", "log_level": 3,
    })
    out, err = console(), console(stderr=True)  # a pipe gets whole rows, never rich's 80-column default
    try:
        try:
            metadata = consumer.list_topics(spec.name, timeout=10)
        except KafkaException as error:
            err.print(unreachable("Kafka", settings.bootstrap_servers, error, setting="KAFKA_BOOTSTRAP_SERVERS"),
                      markup=False, style="red")
            raise typer.Exit(1) from None
        partitions = metadata.topics[spec.name].partitions if spec.name in metadata.topics else {}
        if not partitions or metadata.topics[spec.name].error is not None:
            err.print(f"[red]topic {escape(spec.name)} does not exist (yet)[/]")
            raise typer.Exit(1)
        start_offset = OFFSET_BEGINNING if start == "beginning" else OFFSET_END
        consumer.assign([TopicPartition(spec.name, p, start_offset) for p in partitions])
        columns = COLUMNS.get(spec.value_model.__name__, ())
        shown = 0
        header = True
        last_record = time.monotonic()
        while limit is None or shown < limit:
            batch = consumer.consume(min(500, (limit - shown) if limit else 500), timeout=0.5)
            rows = [message for message in batch if message.error() is None]
            if not rows:
                if idle_exit is not None and time.monotonic() - last_record > idle_exit:
                    break
                continue
            last_record = time.monotonic()
            if as_json:
                for message in rows:
                    typer.echo(json.dumps(_record(message, spec.value_model)))
            else:
                table = Table(show_header=header, box=None, pad_edge=False)
                header = False
                for column in ("p:offset", "key", *(columns or ("value",))):
                    table.add_column(column, no_wrap=True, overflow="ellipsis",
                                     min_width=20 if column.startswith("ts_") else None)
                for message in rows:
                    value = _record(message, spec.value_model)["value"]
                    cells = [_cell(value.get(c)) if isinstance(value, dict) else "" for c in columns] if columns \
                        else [_cell(value, 120)]
                    table.add_row(f"{message.partition()}:{message.offset()}", _cell(value_key(message)), *cells)
                out.print(table)
            shown += len(rows)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


def value_key(message: Any) -> str:
    key = message.key()
    return key.decode("utf-8", errors="backslashreplace") if key else ""


def decoded_value(raw: bytes, model: type[Event]) -> tuple[Any, int | None]:
    """The record's value as JSON data: the current-version event (and the version it was upcast from,
    None when it was current), or, when it does not decode, the raw JSON (or text) as it is."""
    from pydantic import ValidationError

    from schemas.upcasters import CHAINS, UnsupportedSchemaVersionError

    try:
        event, version = CHAINS[model].decode_versioned(raw)
    except (ValidationError, UnsupportedSchemaVersionError, KeyError):
        try:
            return json.loads(raw), None
        except ValueError:
            return raw.decode("utf-8", errors="backslashreplace"), None
    return json.loads(event.model_dump_json()), (version if version != event.schema_version else None)


def _record(message: Any, model: type[Event]) -> dict[str, Any]:
    value, upcast_from = decoded_value(message.value() or b"", model)
    timestamp_ms = message.timestamp()[1]
    record = {
        "topic": message.topic(), "partition": message.partition(), "offset": message.offset(),
        "key": value_key(message),
        "timestamp": datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat() if timestamp_ms > 0 else None,
        "value": value,
    }
    if upcast_from is not None:
        record["upcast_from"] = upcast_from
    return record


def register(app: typer.Typer) -> None:
    app.command(name="tail")(tail)
