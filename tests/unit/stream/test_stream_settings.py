"""The client settings of ``stockstream process``: producer batching (PROCESS_PRODUCER_LINGER_MS) per processing
guarantee, the consumer poll timeout (PROCESS_POLL_TIMEOUT_SECONDS) per commit interval, RocksDB sizes, the live update interval (LIVE_UPDATE_INTERVAL)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from processors.stream.settings import DEFAULT_LINGER_MS, ProcessSettings, default_poll_timeout


def test_linger_defaults_to_20_ms_under_exactly_once_and_librdkafkas_5_under_at_least_once(monkeypatch) -> None:
    monkeypatch.delenv("PROCESS_PRODUCER_LINGER_MS", raising=False)
    monkeypatch.delenv("PROCESSING_GUARANTEE", raising=False)
    assert ProcessSettings().linger_ms == 20.0 == DEFAULT_LINGER_MS["exactly-once"]
    assert ProcessSettings(processing_guarantee="at-least-once").linger_ms == 5.0


def test_linger_comes_from_the_environment_and_is_bounded(monkeypatch) -> None:
    monkeypatch.setenv("PROCESS_PRODUCER_LINGER_MS", "0")
    assert ProcessSettings().linger_ms == 0.0
    monkeypatch.setenv("PROCESS_PRODUCER_LINGER_MS", "50")
    assert ProcessSettings(processing_guarantee="at-least-once").linger_ms == 50.0
    monkeypatch.setenv("PROCESS_PRODUCER_LINGER_MS", "-1")
    with pytest.raises(ValidationError, match="PROCESS_PRODUCER_LINGER_MS"):
        ProcessSettings()


def test_rocksdb_buffers_are_sized_for_a_small_state_and_configurable(monkeypatch) -> None:
    from processors.stream.topology import rocksdb_options

    mib = 1024 * 1024
    monkeypatch.delenv("PROCESS_ROCKSDB_WRITE_BUFFER_MB", raising=False)
    monkeypatch.delenv("PROCESS_ROCKSDB_BLOCK_CACHE_MB", raising=False)
    default = rocksdb_options(ProcessSettings())
    assert (default.write_buffer_size, default.max_write_buffer_number, default.block_cache_size) == (
        4 * mib, 2, 64 * mib)
    monkeypatch.setenv("PROCESS_ROCKSDB_WRITE_BUFFER_MB", "16")
    monkeypatch.setenv("PROCESS_ROCKSDB_BLOCK_CACHE_MB", "256")
    tuned = rocksdb_options(ProcessSettings())
    assert (tuned.write_buffer_size, tuned.target_file_size_base, tuned.block_cache_size) == (
        16 * mib, 16 * mib, 256 * mib)
    monkeypatch.setenv("PROCESS_ROCKSDB_WRITE_BUFFER_MB", "0")
    with pytest.raises(ValidationError):
        ProcessSettings()


def test_poll_timeout_is_a_fifth_of_the_commit_interval_between_5_and_50_ms(monkeypatch) -> None:
    # Quix checks whether a checkpoint is due only after a poll returns; its default (1 s) held the
    # transaction of the last records before a pause in the input for up to a second.
    for name in ("PROCESS_POLL_TIMEOUT_SECONDS", "PROCESS_COMMIT_INTERVAL_SECONDS", "PROCESSING_GUARANTEE"):
        monkeypatch.delenv(name, raising=False)
    assert ProcessSettings().poll_timeout == 0.05  # exactly-once, 0.25 s commits
    assert ProcessSettings(commit_interval_s=0.1).poll_timeout == pytest.approx(0.02)
    assert ProcessSettings(processing_guarantee="at-least-once").poll_timeout == 0.05  # 5 s commits
    assert ProcessSettings(commit_interval_s=0).poll_timeout == 0.005  # a checkpoint per record
    assert [default_poll_timeout(interval) for interval in (0.01, 0.1, 0.25, 1.0, 600.0)] == pytest.approx(
        [0.005, 0.02, 0.05, 0.05, 0.05])


def test_poll_timeout_comes_from_the_environment_and_is_bounded(monkeypatch) -> None:
    monkeypatch.setenv("PROCESS_POLL_TIMEOUT_SECONDS", "1.0")
    assert ProcessSettings().poll_timeout == 1.0
    for bad in ("0", "-1", "11"):
        monkeypatch.setenv("PROCESS_POLL_TIMEOUT_SECONDS", bad)
        with pytest.raises(ValidationError, match="PROCESS_POLL_TIMEOUT_SECONDS"):
            ProcessSettings()


def test_live_updates_default_to_one_second_of_event_time_and_reach_the_pipeline(monkeypatch) -> None:
    from processors.core.strategy import DEFAULT_STRATEGY
    from processors.stream.topology import pipeline_configs

    monkeypatch.delenv("LIVE_UPDATE_INTERVAL", raising=False)
    assert ProcessSettings().live_update_ms == 1_000
    assert pipeline_configs(ProcessSettings(), DEFAULT_STRATEGY).for_symbol("BTC-USD").live_update_ms == 1_000
    monkeypatch.setenv("LIVE_UPDATE_INTERVAL", "0.25")
    assert pipeline_configs(ProcessSettings(), DEFAULT_STRATEGY).for_symbol("BTC-USD").live_update_ms == 250
    monkeypatch.setenv("LIVE_UPDATE_INTERVAL", "0")  # none
    assert pipeline_configs(ProcessSettings(), DEFAULT_STRATEGY).for_symbol("BTC-USD").live_update_ms == 0
    for bad in ("-1", "nan", "1s"):
        monkeypatch.setenv("LIVE_UPDATE_INTERVAL", bad)
        with pytest.raises(ValidationError, match="LIVE_UPDATE_INTERVAL"):
            ProcessSettings()
