"""Executes a planned :class:`ViewBatch` on Redis: one pipeline of atomic compare-and-set writes.

Idempotence: every "latest value" field and every candle window carries the log offset it
reflects in a companion ``<key>:pos`` hash; a Lua script (atomic on the server) writes only
when the incoming offset is higher, so a duplicated or replayed event never moves a view
backwards. Immutable series (signals, indicator history) are sorted sets whose member is the
event's canonical JSON: adding the same event twice is a no-op by construction, and the cap
is re-applied by rank. Hence at-least-once delivery yields exactly-once views.

After the writes succeed, the updates that really changed a view are PUBLISHed as compact
JSON on ``{prefix}live:updates`` for the API's live endpoint (best effort: a failure between
write and publish loses that live message, never a view).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from processors.materialize.keys import ViewKeys, position_key
from processors.materialize.planner import ViewBatch

# KEYS: data hash, position hash. ARGV: field, offset, value. Returns 1 if written, 0 if stale.
SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and tonumber(current) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

# KEYS: index zset, data hash, position hash. ARGV: member, score, offset, value, cap.
# Upserts one window if the offset is newer, then keeps the newest `cap` windows.
UPSERT_CAPPED = """
local current = redis.call('HGET', KEYS[3], ARGV[1])
if current and tonumber(current) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
  redis.call('HDEL', KEYS[2], unpack(old))
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

    def apply(self, batch: ViewBatch) -> ApplyResult:
        if batch.write_count == 0 and not batch.symbols:
            return ApplyResult(0, 0, 0)
        pipe = self.client.pipeline(transaction=False)
        lives: list[str | None] = []
        if batch.symbols:
            pipe.sadd(self.keys.symbols, *sorted(batch.symbols))
        for slot in batch.slots.values():
            self._set_if_newer(keys=[slot.data_key, position_key(slot.data_key)],
                               args=[slot.field, slot.offset, slot.value], client=pipe)
            lives.append(slot.live)
        for candle in batch.candles.values():
            self._upsert_capped(keys=[candle.index_key, candle.data_key, position_key(candle.data_key)],
                                args=[candle.member, candle.score, candle.offset, candle.value, candle.cap],
                                client=pipe)
            lives.append(candle.live)
        for add in batch.series:
            pipe.zadd(add.key, {add.member: add.score})
            lives.append(add.live)
        for key, cap in batch.trims.items():
            pipe.zremrangebyrank(key, 0, -(cap + 1))
        results: list[Any] = pipe.execute()
        if batch.symbols:
            results = results[1:]
        written = [live for live, result in zip(lives, results, strict=False) if result]
        published = self._publish([live for live in written if live is not None]) if self.publish else 0
        return ApplyResult(len(written), len(lives) - len(written), published)

    def _publish(self, updates: list[str]) -> int:
        if not updates:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(updates), LIVE_CHUNK):
            chunk = updates[start:start + LIVE_CHUNK]
            pipe.publish(self.keys.live_updates, '{"v":1,"updates":[' + ",".join(chunk) + "]}")
        pipe.execute()
        return len(updates)
