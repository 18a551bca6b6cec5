"""Prometheus metrics of the materializer (names ``stockstream_materialize_*``, low-cardinality labels)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("stockstream_materialize_events_total",
                 "Events materialized into Redis views, by input topic (namespace prefix removed)", ["topic"])
WRITES = Counter("stockstream_materialize_writes_total",
                 "View writes by outcome: written (changed a view) or stale (view already newer; duplicate/replay)",
                 ["outcome"])
DEAD_LETTERS = Counter("stockstream_materialize_dead_letters_total",
                       "Records refused and sent to the views dead-letter topic, by reason", ["reason"])
REDIS_ERRORS = Counter("stockstream_materialize_redis_errors_total",
                       "Failed Redis batch writes (each is retried; the consumer position is kept)")
BATCH_SECONDS = Histogram("stockstream_materialize_batch_write_seconds",
                          "Latency of one batch write to Redis (pipeline incl. live publish)",
                          buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
BATCH_RECORDS = Histogram("stockstream_materialize_batch_records", "Records per consumed batch",
                          buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000))
LIVE_PUBLISHED = Counter("stockstream_materialize_live_updates_total", "Live updates published on Redis pub/sub")
REDIS_UP = Gauge("stockstream_materialize_redis_up", "1 when the last Redis write succeeded, 0 while retrying")
REWINDS = Counter("stockstream_materialize_rewinds_total",
                  "Partitions re-read because Redis lost acknowledged view writes (its progress fell behind)")
