"""How far the views reach, recorded in Redis itself, so a Redis that lost writes is noticed and refilled.

Redis acknowledges a write before it is on disk (AOF ``everysec`` can lose up to a second; an
RDB-only Redis everything since its last snapshot), while the materializer commits its Kafka
offsets right after the write: after such a crash the views would miss records that Kafka
says are done. So each batch's pipeline ends with ``HSET {p}progress <topic>:<partition>
<next offset>`` for the partitions it wrote. Redis applies and persists commands in order, so
whatever survives a crash is a prefix of what was written: a progress entry that survived
implies the view writes before it survived too (the progress can only be behind the views,
never ahead).

Before writing a batch, the materializer reads the progress of the batch's partitions
(:class:`ProgressGuard`): when Redis's progress for a partition is behind what this process
wrote there, Redis lost writes (it was restarted from older data) — the partition is sought
back to the progress and those records are re-read; the view writes are idempotent (compare-and-set on
offsets, sorted-set members), so re-applying is safe. Redis, not Kafka's committed offset, is
the authority on what the views hold. No entry at all (fresh views, a rebuilt prefix) means
no check. The key is not a view (not under ``VIEW_ROOTS``): rebuilds, swaps and comparisons
leave it alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import redis

from processors.materialize.planner import InputRecord


def progress_key(prefix: str) -> str:
    return f"{prefix}progress"


def field_of(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def next_offsets_by_partition(records: Iterable[InputRecord]) -> dict[str, int]:
    """``topic:partition`` → last offset + 1 among ``records``."""
    reached: dict[str, int] = {}
    for record in records:
        name = field_of(record.topic, record.partition)
        reached[name] = max(reached.get(name, 0), record.offset + 1)
    return reached


def first_offsets(records: Sequence[InputRecord]) -> dict[tuple[str, int], int]:
    first: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        first[key] = min(first.get(key, record.offset), record.offset)
    return first


Partition = tuple[str, int]


class ProgressGuard:
    """One materializer's view of the progress it wrote; decides which partitions to re-read.

    ``written``: the next offset this process last recorded per partition (what Redis must hold);
    ``first``: the first offset this process wrote per partition; ``checked``: partitions whose
    first batch was already compared with Redis. Offsets are "last record + 1", and a transaction
    marker can sit at that offset: comparing Redis with what *we* wrote (not with the next record's
    offset) keeps markers from looking like gaps.
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.key = progress_key(prefix)
        self.written: dict[Partition, int] = {}
        self.first: dict[Partition, int] = {}
        self.checked: set[Partition] = set()

    def lost(self, records: Sequence[InputRecord]) -> dict[Partition, int]:
        """Partitions of ``records`` for which Redis lost writes: partition → the offset to re-read from.

        A partition this process wrote: Redis's progress behind what we wrote (or gone, then from the
        first offset we wrote). A partition not written yet by this process: Redis's progress behind
        the batch's first record, checked once (a restart after Redis lost writes). Raises Redis errors.
        """
        starts = first_offsets(records)
        if not starts:
            return {}
        partitions = sorted(starts)
        values = self.client.hmget(self.key, [field_of(topic, partition) for topic, partition in partitions])
        rewind: dict[Partition, int] = {}
        for partition, value in zip(partitions, values, strict=True):
            stored = int(value) if value is not None else None
            expected = self.written.get(partition)
            if expected is not None:
                if stored is None:
                    rewind[partition] = self.first[partition]
                elif stored < expected:
                    rewind[partition] = stored
            elif partition not in self.checked and stored is not None and stored < starts[partition]:
                rewind[partition] = stored
        for partition in rewind:
            self.written.pop(partition, None)
            self.first.pop(partition, None)
            self.checked.add(partition)
        return rewind

    def wrote(self, records: Sequence[InputRecord]) -> None:
        """Record that ``records`` (and their progress) are written."""
        for partition, start in first_offsets(records).items():
            self.first.setdefault(partition, start)
            self.checked.add(partition)
        for name, offset in next_offsets_by_partition(records).items():
            topic, _, number = name.rpartition(":")
            self.written[(topic, int(number))] = offset

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Partitions revoked: another instance writes them now."""
        for partition in partitions:
            self.written.pop(partition, None)
            self.first.pop(partition, None)
            self.checked.discard(partition)


def progress_mapping(records: Iterable[InputRecord]) -> Mapping[str, int]:
    """What a batch's pipeline records as progress (see :meth:`ViewStore.apply`)."""
    return next_offsets_by_partition(records)
