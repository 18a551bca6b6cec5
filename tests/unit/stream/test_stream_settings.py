"""The producer batching of ``stockstream process`` (PROCESS_PRODUCER_LINGER_MS) per processing guarantee."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from processors.stream.settings import DEFAULT_LINGER_MS, ProcessSettings


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
