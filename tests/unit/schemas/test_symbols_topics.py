"""Symbol normalization, timeframes and the topic registry."""

from __future__ import annotations

import pytest

from processors.runtime.settings import KafkaSettings
from schemas.symbols import InvalidSymbolError, normalize_symbol, pair_symbol
from schemas.timeframes import InvalidTimeframeError, timeframe_ms, validate_timeframe
from schemas.topics import FOREVER, TopicRegistry


@pytest.mark.parametrize(("raw", "expected"), [
    ("btc-usd", "BTC-USD"), (" BTC/USD ", "BTC-USD"), ("brk.b", "BRK.B"), ("ETH_USDT", "ETH_USDT"),
])
def test_normalize_symbol(raw, expected):
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "BTC USD", "<img>", "-BTC", "X" * 33, 5, None, "BTC\nUSD"])
def test_normalize_symbol_rejects(raw):
    with pytest.raises(InvalidSymbolError):
        normalize_symbol(raw)


def test_pair_symbol():
    assert pair_symbol("btc", "usd") == "BTC-USD"


@pytest.mark.parametrize(("timeframe", "ms"), [("1s", 1000), ("1m", 60_000), ("5m", 300_000), ("1h", 3_600_000),
                                               ("1d", 86_400_000)])
def test_timeframe_lengths(timeframe, ms):
    assert timeframe_ms(timeframe) == ms


@pytest.mark.parametrize("timeframe", ["0m", "7m", "1w", "m", "tick ", "60"])
def test_bad_timeframes(timeframe):
    with pytest.raises(InvalidTimeframeError):
        validate_timeframe(timeframe)


def test_registry_prefixes_every_topic_and_keeps_ticks_forever():
    registry = TopicRegistry(prefix="ns.", ticks_base="prices", candle_timeframes=("1m", "5m"))
    names = [spec.name for spec in registry.all()]
    assert names == ["ns.prices", "ns.prices.dlq", "ns.candles.1m", "ns.candles.5m", "ns.indicators",
                     "ns.signals", "ns.signals.outcomes", "ns.aggregates.daily", "ns.views.dlq", "ns.notifications.dlq"]
    assert registry.ticks.retention_ms == FOREVER
    assert registry.ticks.config()["retention.bytes"] == "-1"
    assert registry.ticks_dlq.config()["retention.ms"] != "-1"


def test_dead_letters_take_the_brokers_time_and_derived_events_their_inputs():
    """A dead letter's retention counts from when it was refused (schemas/topics.py, "Dead letters")."""
    for registry, count in ((TopicRegistry(prefix="ns."), 3), (TopicRegistry(prefix="ns.", run_id="alt-1"), 2)):
        stamped = {spec.name: spec.config().get("message.timestamp.type") for spec in registry.all()}
        dead_letters = {name for name in stamped if name.endswith(".dlq")}
        assert len(dead_letters) == count  # a run has no notifications
        assert {stamped[name] for name in dead_letters} == {"LogAppendTime"}
        # Outputs keep their input's record timestamp: replay and backfill write the same records as live.
        assert {stamped[name] for name in stamped if name not in dead_letters} == {None}


def test_kafka_settings_read_the_original_env_names(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:29092")
    monkeypatch.setenv("KAFKA_TOPIC", "btc_ticks")
    monkeypatch.setenv("STOCKSTREAM_TIMEFRAMES", "1m, 5m")
    settings = KafkaSettings(_env_file=None)
    assert settings.bootstrap_servers == "broker:29092"
    assert settings.topics().ticks.name == "btc_ticks"
    assert settings.candle_timeframes == ("1m", "5m")


def test_kafka_settings_reject_bad_timeframes(monkeypatch):
    monkeypatch.setenv("STOCKSTREAM_TIMEFRAMES", "1m,tick")
    with pytest.raises(ValueError, match="tick"):
        KafkaSettings(_env_file=None)
