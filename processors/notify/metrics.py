"""Prometheus metrics of the notifier (``stockstream_notify_*``), labelled by channel.

Lanes run in their own processes; the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
before starting them and serves the aggregate on ``METRICS_PORT`` (default 9104),
so these counters are totals over every lane process, restarts included.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Signal event time → delivered: from 1 ms up to the minutes rate limits and retries can add.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 120.0, 300.0, 600.0)

DELIVERIES = Counter("stockstream_notify_deliveries_total", "Notifications delivered", ["channel"])
FAILURES = Counter("stockstream_notify_failures_total",
                   "Notifications that could not be delivered and went to notifications.dlq", ["channel", "reason"])
RETRIES = Counter("stockstream_notify_retries_total", "Delivery attempts retried", ["channel", "reason"])
DROPPED_BY_COOLDOWN = Counter("stockstream_notify_dropped_by_cooldown_total",
                              "Signals not sent because the subscription's cooldown was running", ["channel"])
SKIPPED_STALE = Counter("stockstream_notify_skipped_stale_total",
                        "Signals older than NOTIFY_MAX_AGE_S when first seen, recorded and not sent", ["channel"])
DUPLICATES = Counter("stockstream_notify_duplicates_suppressed_total",
                     "Signals already in the delivery ledger (replay, restart, rebalance), not sent again",
                     ["channel"])
LEDGER_PRUNED = Counter("stockstream_notify_ledger_pruned_total",
                        "Ledger entries dropped: their signal is older than twice NOTIFY_MAX_AGE_S and can never be"
                        " sent again", ["channel"])
INVALID_SIGNALS = Counter("stockstream_notify_invalid_signals_total",
                          "Records on the signals topic that are not valid Signal events (dead-lettered)",
                          ["channel"])
LATENCY = Histogram("stockstream_notify_delivery_latency_seconds",
                    "Signal event time to confirmed delivery", ["channel"], buckets=LATENCY_BUCKETS)
