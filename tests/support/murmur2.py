"""Kafka's Java client partitioner, written out: the reference the ingest partitioning is tested against.

``org.apache.kafka.common.utils.Utils.murmur2`` (seed 0x9747b28c) and the default partitioner's
``toPositive(murmur2(key)) % partitions``; Quix Streams' producer and librdkafka's ``murmur2`` /
``murmur2_random`` partitioners compute the same. Test-only: production code never computes a
partition itself, it sets the client's partitioner (processors/ingest/publisher.py).
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_M = 0x5BD1E995


def murmur2(data: bytes) -> int:
    """Java's ``Utils.murmur2(data)`` as a signed 32-bit int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    full = length - length % 4
    for index in range(0, full, 4):
        k = int.from_bytes(data[index:index + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[full:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's Java producer picks for a keyed record: ``toPositive(murmur2(key)) % partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
