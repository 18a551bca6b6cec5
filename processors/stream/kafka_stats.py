"""Consumer lag per input partition from librdkafka statistics.

Quix passes a ``stats_cb`` from ``consumer_extra_config`` through to librdkafka, which calls it
every ``statistics.interval.ms`` from inside ``poll()`` (so on the processing thread) with a
JSON document; :class:`ConsumerStats` turns the assigned partitions of the input topics into
the ``stockstream_process_consumer_lag_records`` gauge and drops partitions that were revoked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from processors.stream.metrics import ProcessMetrics

log = logging.getLogger(__name__)


class ConsumerStats:
    """The ``stats_cb`` of the processor's consumer."""

    def __init__(self, metrics: ProcessMetrics, input_topics: Iterable[str]) -> None:
        self.metrics = metrics
        self.input_topics = frozenset(input_topics)
        self._shown: set[tuple[str, str]] = set()
        self.last: dict[tuple[str, int], int] = {}

    def __call__(self, stats_json: str) -> None:
        try:
            stats = json.loads(stats_json)
            lags = dict(self._lags(stats))
        except (ValueError, TypeError, AttributeError) as error:
            log.warning("unreadable librdkafka statistics: %s", error)
            return
        self.last = lags
        shown = set()
        for (topic, partition), lag in lags.items():
            labels = (topic, str(partition))
            self.metrics.consumer_lag.labels(*labels).set(lag)
            shown.add(labels)
        for labels in self._shown - shown:
            self.metrics.consumer_lag.remove(*labels)
        self._shown = shown

    def _lags(self, stats: dict[str, Any]) -> Iterable[tuple[tuple[str, int], int]]:
        for topic, entry in (stats.get("topics") or {}).items():
            if topic not in self.input_topics:
                continue
            for key, partition in (entry.get("partitions") or {}).items():
                number = int(key)
                if number < 0 or not partition.get("desired", True) or partition.get("fetch_state") == "none":
                    continue  # the internal "UA" partition, or not assigned to us
                lag = partition.get("consumer_lag", -1)
                if isinstance(lag, int) and lag >= 0:
                    yield (topic, number), lag
