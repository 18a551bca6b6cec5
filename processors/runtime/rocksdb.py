"""RocksDB sizing for our Quix state stores: small, because our per-key state is small.

Quix's defaults (64 MiB write buffers, up to 3 per partition, a 1 GiB block cache) suit large
stores; for ~2 KB documents per key they only let resident memory climb for many minutes before the
first flush, which reads as a leak (30-min soak of ``process``: +27 %). The stream processor and
each notifier lane (one process per channel, four under one 1 GiB pod limit) call this with their
own settings (PROCESS_ROCKSDB_*, NOTIFY_ROCKSDB_*).
"""

from __future__ import annotations

from quixstreams.state.rocksdb import RocksDBOptions

MIB = 1024 * 1024


def small_state_options(write_buffer_mb: int, block_cache_mb: int) -> RocksDBOptions:
    """Two write buffers of ``write_buffer_mb`` per store and a block cache of ``block_cache_mb``."""
    return RocksDBOptions(write_buffer_size=write_buffer_mb * MIB,
                          target_file_size_base=max(8, write_buffer_mb) * MIB,
                          max_write_buffer_number=2,
                          block_cache_size=block_cache_mb * MIB)
