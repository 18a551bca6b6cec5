"""Each bug the fuzz tier found, as a plain deterministic test (the fuzz tests keep them as ``@example`` too)."""

from __future__ import annotations

import io
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from processors.core.pipeline import PipelineConfig, SymbolProcessor
from processors.core.strategy import DEFAULT_STRATEGY, StrategyError, load_strategy
from processors.ingest.sources.base import Accepted, Rejected, SourceProblem
from processors.ingest.sources.exchanges.binance import BinanceAdapter
from processors.ingest.sources.exchanges.coinbase import CoinbaseAdapter
from processors.ingest.sources.exchanges.kraken import KrakenAdapter
from processors.ingest.sources.file import FileSource
from processors.ingest.validation import TimeBounds
from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputRecord, InputTopics
from processors.notify.subscriptions import SubscriptionConfigError, load_config
from processors.stream.records import decode_tick
from schemas.events import DeadLetter, Lineage, Signal, Tick, encode
from schemas.instruments import Instrument
from schemas.topics import TopicRegistry
from stockstream.batch import run
from tests.fuzz.invariants import NOW, dead_letter_of
from tests.support.fake_servers.exchange_ws import binance_trade, kraken_trade, kraken_trades

T = "2024-05-01T12:00:00.123456Z"
T_MS = 1_714_564_800_123


def test_dead_letter_with_a_lone_surrogate_still_encodes() -> None:
    """A JSON frame may carry "\\ud800" (valid JSON, not encodable as UTF-8): the ingest service crashed
    publishing its dead letter (PydanticSerializationError). The schema now backslash-escapes it."""
    (rejected,) = BinanceAdapter("ws://x", ("BTC-USDT",), TimeBounds()).parse(
        json.dumps(binance_trade(1, "1", T_MS, symbol="\ud800")), NOW)
    assert isinstance(rejected, Rejected) and rejected.reason == "symbol_unexpected"
    letter = DeadLetter.model_validate_json(encode(dead_letter_of("binance", rejected)))
    assert "\\ud800" in letter.detail


def test_timestamp_without_a_utc_equivalent_is_rejected_not_raised() -> None:
    """``0001-01-01T00:00:00+05:00`` parses but has no UTC datetime: OverflowError escaped the parser."""
    frame = json.dumps({"type": "ticker", "product_id": "BTC-USD", "trade_id": 1, "price": "1",
                        "time": "0001-01-01T00:00:00+05:00"})
    (rejected,) = CoinbaseAdapter("ws://x", ("BTC-USD",), TimeBounds()).parse(frame, NOW)
    assert isinstance(rejected, Rejected) and rejected.reason == "timestamp_invalid"


def test_unhashable_message_type_or_channel_is_a_dead_letter_not_a_crash() -> None:
    """``{"channel": []}`` raised TypeError (unhashable list in a frozenset test) and stopped the feed."""
    (kraken,) = KrakenAdapter("ws://x", ("BTC-USD",), TimeBounds()).parse('{"channel": []}', NOW)
    (coinbase,) = CoinbaseAdapter("ws://x", ("BTC-USD",), TimeBounds()).parse('{"type": {"a": 1}}', NOW)
    assert isinstance(kraken, Rejected) and kraken.reason == "message_unknown"
    assert isinstance(coinbase, Rejected) and coinbase.reason == "message_unknown"


def test_a_trade_carrying_control_keys_is_not_dropped_silently() -> None:
    """A Binance trade with ``result``/``id`` keys was taken for a subscription ack, a Kraken trade message
    with a ``method`` key for a method reply: both vanished without a tick, a dead letter or a count."""
    binance = BinanceAdapter("ws://x", ("BTC-USDT",), TimeBounds()).parse(
        json.dumps({**binance_trade(1, "64000.5", T_MS), "result": None, "id": 5}), NOW)
    kraken = KrakenAdapter("ws://x", ("BTC-USD",), TimeBounds()).parse(
        json.dumps({**kraken_trades("update", [kraken_trade(1, 64000.5, T)]), "method": "trade"}), NOW)
    with_error = BinanceAdapter("ws://x", ("BTC-USDT",), TimeBounds()).parse(
        json.dumps({**binance_trade(1, "64000.5", T_MS), "error": None}), NOW)
    assert [type(o) for o in binance] == [Accepted] and [type(o) for o in kraken] == [Accepted]
    assert not any(isinstance(o, SourceProblem) for o in with_error) and len(with_error) == 1


def test_csv_first_line_with_a_bare_cr_is_a_dead_letter() -> None:
    """The header probe of ``ingest --source file`` let csv.Error out for a first line holding a bare CR
    (a line break the file iterator does not split on): the whole replay stopped."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ticks.csv"
        path.write_bytes(b"timestamp,sym\rbol,price\n2024-05-01T12:00:00Z,BTC-USD,1\n")
        outcomes = list(FileSource((path,), TimeBounds(), now=lambda: NOW).outcomes(path))
    assert [type(o) for o in outcomes] == [Rejected, Accepted]
    assert isinstance(outcomes[0], Rejected) and outcomes[0].reason == "malformed_csv"


def test_event_time_at_the_end_of_the_calendar_is_rejected_not_an_overflow() -> None:
    """A valid tick on 9999-12-31 made the core raise OverflowError when its 1d candle closed (window end
    10000-01-01): ``stockstream indicators`` crashed, the stream processor dead-lettered it as
    ``processing_failed`` with a traceback. The core now rejects it as ``time_out_of_range``."""
    output = io.StringIO()
    report = run(["9999-12-31T23:59:59Z,BTC-USD,1\n", "9999-12-31T23:59:59.5Z,BTC-USD,2\n"], output,
                 strategy=DEFAULT_STRATEGY, timeframe="1d")
    assert [row.reason for row in report.skipped] == ["time_out_of_range"] * 2
    processor = SymbolProcessor(PipelineConfig(candle_timeframes=("1m",)), Instrument("BTC-USD", "test"))
    tick = Tick(symbol="BTC-USD", venue="test", price=1.0, ts_event=datetime(1, 1, 1, tzinfo=UTC),
                ts_init=datetime(1, 1, 1, tzinfo=UTC), source="fuzz", source_id="1")
    (letter,) = processor.process(tick, Lineage(topic="ticks", partition=0, offset=0)).rejections
    assert letter.reason == "time_out_of_range"


def test_config_files_that_are_not_utf8_or_nest_too_deep_are_refused_with_a_message(tmp_path: Path) -> None:
    """A non-UTF-8 strategy/subscription file raised UnicodeDecodeError, deeply nested YAML RecursionError:
    tracebacks instead of the documented error (exit 2 with the file name)."""
    latin = tmp_path / "s.toml"
    latin.write_bytes(b"name = \"caf\xe9\"\n")
    deep = tmp_path / "s.yaml"
    deep.write_text("[" * 3000)
    for path in (latin, deep):
        with pytest.raises(StrategyError, match="s\\."):
            load_strategy(path)
        with pytest.raises(SubscriptionConfigError, match="s\\."):
            load_config(path)


def test_non_finite_cooldown_is_refused(tmp_path: Path) -> None:
    """``cooldown: .nan`` (or 1e400) was accepted; a NaN cooldown never cools down."""
    for value in (".nan", ".inf", "1e400"):
        path = tmp_path / "subscriptions.yaml"
        path.write_text(f"channels: {{a: {{type: console}}}}\nsubscriptions: [{{channel: a, cooldown: {value}}}]\n")
        with pytest.raises(SubscriptionConfigError, match="finite"):
            load_config(path)


def test_signal_at_the_end_of_the_calendar_does_not_poison_the_materializer() -> None:
    """``ts_event + decay`` overflowed for a valid Signal on 9999-12-31: ``BatchPlanner.plan`` raised, the
    materializer died on that batch and again on every restart (a poison pill). It now stores the
    recommendation with ``expires_at`` at the last representable moment."""
    registry = TopicRegistry(prefix="r.")
    planner = BatchPlanner(ViewKeys("r:"), InputTopics.from_registry(registry), Caps(), lambda: NOW)
    moment = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    signal = Signal(signal_id="0" * 32, symbol="BTC-USD", venue="test", timeframe="tick", rule="ema_cross", side="BUY", price=1.0,
                    strategy="ema_cross", strategy_version=None, condition=None,
                    indicators={}, ts_event=moment, ts_init=NOW, lineage=Lineage(topic="t", partition=0, offset=0))
    batch = planner.plan([InputRecord(registry.signals.name, 0, 7, b"BTC-USD@test", encode(signal))])
    assert not batch.dead_letters and batch.events_by_topic == {"signals": 1}
    (write,) = [w for fields in batch.slots.values() for w in fields.values() if w.field == "*"]
    assert json.loads(write.value)["expires_at"].startswith("9999-12-31T23:59:59.999999")


def test_epoch_beyond_float_range_is_rejected_not_raised() -> None:
    """A Binance trade time of 10**400 (valid JSON) made ``float(int)`` raise OverflowError in parse_epoch.
    Found by the random (``dev``) profile, not by the derandomized CI examples."""
    frame = '{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"1","T":1' + "0" * 400 + "}"
    (rejected,) = BinanceAdapter("ws://x", ("BTC-USDT",), TimeBounds()).parse(frame, NOW)
    assert isinstance(rejected, Rejected) and rejected.reason == "timestamp_invalid"


def test_an_event_time_without_utc_equivalent_is_a_validation_error_for_every_consumer() -> None:
    """``"ts_event": "0001-01-01T00:00:00+05:00"`` made ``Tick.model_validate_json`` raise OverflowError (not a
    ValidationError): one such record on the ticks topic stopped ``stockstream process`` (decode_tick) and
    the materializer. The schema's UTC conversion now reports it as a validation error."""
    value = (b'{"symbol":"BTC-USD","price":1,"ts_event":"0001-01-01T00:00:00+05:00",'
             b'"ts_init":"2024-01-01T00:00:00Z","source":"x","source_id":"1"}')
    with pytest.raises(ValidationError, match="no UTC equivalent"):
        Tick.model_validate_json(value)
    letter = decode_tick(value, b"BTC-USD", 0, Lineage(topic="ticks", partition=0, offset=0))
    assert isinstance(letter, DeadLetter) and letter.reason == "tick_invalid"
