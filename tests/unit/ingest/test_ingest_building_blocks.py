"""Back-off schedule, duplicate window, and the settings contract (env names, CLI precedence, fail fast)."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from processors.ingest.backoff import Backoff
from processors.ingest.dedup import RecentKeys
from processors.ingest.settings import IngestSettings


def test_backoff_grows_exponentially_with_jitter_and_caps():
    backoff = Backoff(1.0, 30.0, random.Random(1))  # noqa: S311
    delays = [backoff.next_delay() for _ in range(10)]
    for attempt, delay in enumerate(delays):
        ceiling = min(30.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jittered, not lockstep
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_recent_keys_is_a_bounded_lru():
    recent = RecentKeys(3)
    assert [recent.seen(("s", k)) for k in "abc"] == [False, False, False]
    assert recent.seen(("s", "a"))  # refreshes a
    assert not recent.seen(("s", "d"))  # evicts b, the least recent
    assert recent.seen(("s", "a")) and not recent.seen(("s", "b")) and len(recent) == 3
    assert not recent.seen(("other", "a"))  # the source is part of the key


def test_original_env_names_are_honoured(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092")
    monkeypatch.setenv("KAFKA_TOPIC", "prices")
    monkeypatch.setenv("MESSAGE_INTERVAL", "2.5")
    monkeypatch.setenv("INGEST_SYMBOLS", "btc/usd, eth-usd")
    settings = IngestSettings()
    assert (settings.bootstrap_servers, settings.message_interval) == ("kafka-1:9092", 2.5)
    assert settings.topics().ticks.name == "prices" and settings.topics().ticks_dlq.name == "prices.dlq"
    assert settings.active_symbols() == ("BTC-USD", "ETH-USD")
    assert settings.simulator_rate() == pytest.approx(2 / 2.5)
    assert settings.metrics_port == 9101


def test_cli_values_override_env_and_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MESSAGE_INTERVAL=7\nINGEST_SIM_SEED=3\n")
    monkeypatch.setenv("MESSAGE_INTERVAL", "5")
    assert IngestSettings().message_interval == 5  # env beats .env
    assert IngestSettings().sim_seed == 3  # .env is read
    assert IngestSettings(message_interval=0.5).message_interval == 0.5  # the CLI beats both


def test_alphavantage_without_key_fails_fast(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALPHAVANTAGE_API_KEY", raising=False)
    with pytest.raises(ValidationError, match="ALPHAVANTAGE_API_KEY"):
        IngestSettings(source="alphavantage")


def test_the_file_checkpoint_bound_applies_to_the_file_source_only(monkeypatch, tmp_path):
    # A small dedup window (the CI soak's 5,000) once made every source refuse to start: the
    # checkpoint rule is the file source's (a restart re-reads the lines since its last position).
    monkeypatch.chdir(tmp_path)
    assert IngestSettings(source="simulator", dedup_window=5_000).dedup_window == 5_000
    ticks = tmp_path / "ticks.csv"
    ticks.write_text("timestamp,symbol,price\n")
    with pytest.raises(ValidationError, match="INGEST_FILE_CHECKPOINT_LINES must not exceed INGEST_DEDUP_WINDOW"):
        IngestSettings(source="file", file_paths=[ticks], dedup_window=5_000)
    assert IngestSettings(source="file", file_paths=[ticks], dedup_window=5_000, file_checkpoint_lines=5_000)


def test_secret_key_never_shows_in_repr(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", "SUPERSECRETKEY123")
    settings = IngestSettings(source="alphavantage")
    assert "SUPERSECRETKEY123" not in repr(settings) and "SUPERSECRETKEY123" not in str(settings.model_dump())


@pytest.mark.parametrize(("overrides", "message"), [
    ({"source": "file"}, "--path"),
    ({"source": "file", "file_paths": ("/nonexistent.csv",)}, "not a readable file"),
    ({"coinbase_ws_url": "http://x"}, "ws://"),
    ({"symbols": "BTC USD"}, "INGEST_SYMBOLS"),
    ({"retry_initial_seconds": 5, "retry_max_seconds": 1}, "INGEST_RETRY_MAX_SECONDS"),
    ({"earliest_timestamp": "2020-01-01T00:00:00"}, "time zone"),
])
def test_bad_configuration_fails_with_a_clear_message(monkeypatch, tmp_path, overrides, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match=message):
        IngestSettings(**overrides)
