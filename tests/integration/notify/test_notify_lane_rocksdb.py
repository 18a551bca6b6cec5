"""Each notifier lane's Quix app sizes RocksDB like the stream processor, not with Quix's defaults.

Quix's defaults (64 MiB write buffers, up to 3 per partition, a 1 GiB block cache per store) let the
processor's memory climb 27 % in the 30-min soak; a notifier pod runs one lane process per channel
(four with the shipped subscriptions) under a 1 GiB limit.
"""

from __future__ import annotations

import pytest

from processors.notify.lane import build_application
from processors.notify.settings import NotifySettings
from tests.integration.notify.test_notify_lane_processor import Lane

pytestmark = pytest.mark.integration
MIB = 1024 * 1024


def test_lane_state_store_uses_small_buffers_and_cache(stack, namespace, monkeypatch) -> None:
    for name in ("NOTIFY_ROCKSDB_WRITE_BUFFER_MB", "NOTIFY_ROCKSDB_BLOCK_CACHE_MB"):
        monkeypatch.delenv(name, raising=False)
    lane = Lane({"type": "console"}, bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace)
    app = build_application(lane.processor.spec, lane.processor)
    options = app.config.rocksdb_options
    assert (options.write_buffer_size, options.max_write_buffer_number, options.block_cache_size) == (
        4 * MIB, 2, 16 * MIB)


def test_lane_rocksdb_sizes_are_settings(monkeypatch) -> None:
    monkeypatch.setenv("NOTIFY_ROCKSDB_WRITE_BUFFER_MB", "8")
    monkeypatch.setenv("NOTIFY_ROCKSDB_BLOCK_CACHE_MB", "32")
    settings = NotifySettings()
    assert (settings.rocksdb_write_buffer_mb, settings.rocksdb_block_cache_mb) == (8, 32)
    monkeypatch.setenv("NOTIFY_ROCKSDB_BLOCK_CACHE_MB", "1")
    with pytest.raises(ValueError, match="NOTIFY_ROCKSDB_BLOCK_CACHE_MB"):
        NotifySettings()
