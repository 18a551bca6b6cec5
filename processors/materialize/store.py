"""Executes a planned :class:`ViewBatch` on Redis: one pipeline of atomic compare-and-set writes.

Idempotence: every "latest value" field and every candle window carries the log offset it
reflects in a companion ``<key>:pos`` hash; a Lua script (atomic on the server) writes only
when the incoming offset is higher, so a duplicated or replayed event never moves a view
backwards. Immutable series (signals, indicator history) are sorted sets whose member is the
event's canonical JSON: adding the same event twice is a no-op by construction, and the cap
is re-applied by rank (one ZADD with every member of the batch, then ZREMRANGEBYRANK). Hence
at-least-once delivery yields exactly-once views.

After the writes succeed, the updates that really changed a view are PUBLISHed as compact
JSON on ``{prefix}live:updates`` for the API's live endpoint (best effort: a failure between
write and publish loses that live message, never a view).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from processors.materialize.keys import ViewKeys, position_key
from processors.materialize.planner import SeriesAdd, ViewBatch, live_update
from processors.materialize.progress import progress_key

# KEYS: data hash, position hash. ARGV: field1, offset1, value1, field2, … Per field: written (1) only if
# the offset is higher than the one the field reflects, else 0. Returns the flags in ARGV order.
SET_IF_NEWER = """
local flags = {}
for i = 1, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[2], ARGV[i])
  if current and tonumber(current) >= tonumber(ARGV[i + 1]) then
    flags[#flags + 1] = 0
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    flags[#flags + 1] = 1
  end
end
return flags
"""

# KEYS: index zset, data hash, position hash. ARGV: member, score, offset, value, cap, final (1 or 0).
# Upserts one window, then keeps the newest `cap` windows. A forming candle (final 0) is marked by a
# '~' .. member field in the position hash (members are digits). Written when: nothing is stored; or the incoming
# candle is final and the stored one is forming (the closed candle supersedes, whatever the offsets);
# or both are alike and the offset is newer. So a final candle is never replaced by a forming one of
# its window arriving late (another run's, a replay's), and a candle stored before version 3 (no
# mark: closed) counts as final.
UPSERT_CAPPED = """
local current = redis.call('HGET', KEYS[3], ARGV[1])
local final = ARGV[6] == '1'
if current then
  local stored_forming = redis.call('HEXISTS', KEYS[3], '~' .. ARGV[1]) == 1
  local newer = tonumber(current) < tonumber(ARGV[3])
  if final then
    if not stored_forming and not newer then return 0 end
  elseif not stored_forming or not newer then
    return 0
  end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if final then
  redis.call('HDEL', KEYS[3], '~' .. ARGV[1])
else
  redis.call('HSET', KEYS[3], '~' .. ARGV[1], 1)
end
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
  redis.call('HDEL', KEYS[2], unpack(old))
  redis.call('HDEL', KEYS[3], unpack(old))
  for i, member in ipairs(old) do old[i] = '~' .. member end
  redis.call('HDEL', KEYS[3], unpack(old))
  for _, member in ipairs(old) do
    if member == ARGV[1] then return 0 end
  end
end
return 1
"""

LIVE_CHUNK = 500


@dataclass(frozen=True)
class ApplyResult:
    written: int  # writes that changed a view
    stale: int  # writes refused because the view already reflects that offset or a later one
    published: int  # live updates published


class ViewStore:
    """Writes batches under one key prefix. Raises ``redis.RedisError`` when Redis fails (caller retries)."""

    def __init__(self, client: redis.Redis, keys: ViewKeys, publish: bool = True) -> None:
        self.client = client
        self.keys = keys
        self.publish = publish
        self._set_if_newer = client.register_script(SET_IF_NEWER)
        self._upsert_capped = client.register_script(UPSERT_CAPPED)

    def apply(self, batch: ViewBatch, progress: Mapping[str, int] | None = None) -> ApplyResult:
        """One pipeline for the whole batch (one command or script call per key), then the live updates.

        ``progress`` (``topic:partition`` → next offset) is written last in the same pipeline, to
        ``{prefix}progress`` (processors/materialize/progress.py): Redis persists in order, so it never
        survives a crash without the writes before it.
        """
        if batch.write_count == 0 and not batch.instruments and not progress:
            return ApplyResult(0, 0, 0)
        pipe = self.client.pipeline(transaction=False)
        lives: list[list[tuple[str | None, bytes]]] = []  # per script call: (live type, JSON) of each write
        if batch.instruments:
            pipe.sadd(self.keys.instruments, *sorted(batch.instruments))
        for data_key, fields in batch.slots.items():
            args: list[str | int | bytes] = []
            for slot in fields.values():
                args += [slot.field, slot.offset, slot.value]
            self._set_if_newer(keys=[data_key, position_key(data_key)], args=args, client=pipe)
            lives.append([(slot.live, slot.value) for slot in fields.values()])
        for candle in batch.candles.values():
            self._upsert_capped(keys=[candle.index_key, candle.data_key, position_key(candle.data_key)],
                                args=[candle.member, candle.score, candle.offset, candle.value, candle.cap,
                                      1 if candle.final else 0],
                                client=pipe)
            lives.append([(candle.live, candle.value)])
        series: list[tuple[int, dict[bytes, SeriesAdd]]] = []
        for key, group in batch.series.items():
            unique = {add.member: add for add in group.adds}  # a duplicate within the batch counts once
            pipe.zadd(key, {member: add.score for member, add in unique.items()})
            pipe.zremrangebyrank(key, 0, -(group.cap + 1))
            series.append((len(group.adds), unique))
        if progress:
            pipe.hset(progress_key(self.keys.prefix), mapping=dict(progress))
        results: list[Any] = pipe.execute()
        if progress:
            results = results[:-1]
        if batch.instruments:
            results = results[1:]
        written = total = 0
        updates: list[bytes] = []
        for group_lives, result in zip(lives, results[:len(lives)], strict=True):
            flags = result if isinstance(result, list) else [result]
            total += len(group_lives)
            for (kind, text), flag in zip(group_lives, flags, strict=True):
                if flag:
                    written += 1
                    if kind is not None and self.publish:
                        updates.append(live_update(kind, text))
        # Sorted sets answer how many members were new, not which: all new (live run) → publish them all;
        # none (replay) → nothing; a mix (a replay overlapping new data) → all, the clients de-duplicate.
        added_counts = results[len(lives)::2]
        for (count, unique), added in zip(series, added_counts, strict=True):
            total += count
            written += added
            if added and self.publish:
                updates += [live_update(add.live, member) for member, add in unique.items() if add.live is not None]
        published = self._publish(updates) if updates else 0
        return ApplyResult(written, total - written, published)

    def _publish(self, updates: list[bytes]) -> int:
        if not updates:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(updates), LIVE_CHUNK):
            chunk = updates[start:start + LIVE_CHUNK]
            pipe.publish(self.keys.live_updates, b'{"v":1,"updates":[' + b",".join(chunk) + b"]}")
        pipe.execute()
        return len(updates)
