"""Prometheus metrics of the stream processor (names ``stockstream_process_*``).

Created against an explicit registry so in-process tests get their own; the service uses
the default registry that ``/metrics`` serves. Label values are bounded: topics of this
deployment, reason codes of :mod:`processors.stream.reasons`, configured rules and
timeframes, assigned partitions.

The per-record counters and the latency histogram sit on the hot path (tens of thousands
of updates a second), where prometheus-client's locked ``inc``/``observe`` cost about a tenth
of the handler's time. :class:`HotPathMetrics` keeps them as plain numbers updated by
the one processing thread and turns them into metric families only when scraped (a
prometheus-client custom collector); the rest are ordinary metrics.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

# Tick ts_init → output handed to the producer: 1 ms … 30 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


DEFAULT_MAX_SYMBOLS = 50


class HotPathMetrics(Collector):
    """Counters and the latency histogram of every record, as plain numbers (one writer thread).

    Also the per-instrument series (last price, indicator values, signals; labels ``symbol`` and
    ``venue``) for the first ``max_symbols`` instruments this instance sees: the labels are bounded
    by configuration (``PROCESS_METRICS_MAX_SYMBOLS``), never by the input.
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS, max_symbols: int = DEFAULT_MAX_SYMBOLS) -> None:
        self.consumed: dict[str, int] = {}  # by input topic
        self.produced: dict[str, int] = {}  # by output topic
        self.signals: dict[tuple[str, str, str], int] = {}  # by rule, side, timeframe
        self.dead_letters: dict[str, int] = {}  # by reason
        self.out_of_order = 0
        self.bounds = buckets
        self.latency_counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.latency_sum = 0.0
        self.max_symbols = max_symbols
        self.symbols: set[bytes] = set()  # the instruments (record keys) with per-instrument series
        # (symbol, venue, tf) → price, values
        self.latest: dict[tuple[str, str, str], tuple[float, dict[str, float | None]]] = {}
        self.symbol_signals: dict[tuple[str, str, str, str, str], int] = {}  # symbol, venue, timeframe, rule, side

    def tracks(self, symbol: bytes) -> bool:
        """Whether the instrument ``symbol`` (its key) has per-instrument series (admits it while there is room)."""
        if symbol in self.symbols:
            return True
        if len(self.symbols) < self.max_symbols:
            self.symbols.add(symbol)
            return True
        return False

    def observe_latency(self, seconds: float) -> None:
        self.latency_counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.latency_sum += seconds

    def collect(self) -> Iterator[Metric]:
        yield _counter("stockstream_process_records_consumed", "Input records processed (valid or not), by topic",
                       ["topic"], {(topic,): n for topic, n in list(self.consumed.items())})
        yield _counter("stockstream_process_records_produced",
                       "Output records handed to the producer, by topic (under exactly-once they become"
                       " visible when the checkpoint's transaction commits)",
                       ["topic"], {(topic,): n for topic, n in list(self.produced.items())})
        yield _counter("stockstream_process_signals", "Signals emitted, by rule, side and timeframe",
                       ["rule", "side", "timeframe"], dict(list(self.signals.items())))
        yield _counter("stockstream_process_dead_letters", "Input records sent to the ticks DLQ, by reason code",
                       ["reason"], {(reason,): n for reason, n in list(self.dead_letters.items())})
        yield _counter("stockstream_process_ticks_out_of_order",
                       "Ticks older than their symbol's latest but within grace: folded into candles and the"
                       " daily aggregate, not into tick-timeframe indicators", [], {(): self.out_of_order})
        yield from self._per_symbol()
        counts = list(self.latency_counts)
        cumulative, running = [], 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], counts, strict=True):
            running += count
            cumulative.append((bound, running))
        yield HistogramMetricFamily(
            "stockstream_process_latency_seconds",
            "Tick ts_init (ingest time) to its derived records being handed to the producer",
            buckets=cumulative, sum_value=self.latency_sum)


    def _per_symbol(self) -> Iterator[Metric]:
        latest = list(self.latest.items())
        price = GaugeMetricFamily("stockstream_process_symbol_last_price",
                                  "Latest price per symbol and timeframe (candle close for candle timeframes),"
                                  " for at most PROCESS_METRICS_MAX_SYMBOLS instruments",
                                  labels=["symbol", "venue", "timeframe"])
        values = GaugeMetricFamily("stockstream_process_symbol_indicator_value",
                                   "Latest defined value of each indicator per instrument and timeframe (RSI 0-100,"
                                   " averages and MACD in the quote currency)",
                                   labels=["symbol", "venue", "timeframe", "indicator"])
        for (symbol, venue, timeframe), (last, named) in latest:
            price.add_metric([symbol, venue, timeframe], last)
            for indicator, value in named.items():
                if value is not None:
                    values.add_metric([symbol, venue, timeframe, indicator], value)
        yield price
        yield values
        yield _counter("stockstream_process_symbol_signals",
                       "Signals per instrument, timeframe, rule and side (for at most PROCESS_METRICS_MAX_SYMBOLS"
                       " instruments)", ["symbol", "venue", "timeframe", "rule", "side"],
                       dict(list(self.symbol_signals.items())))


def _counter(name: str, documentation: str, labels: list[str], values: dict[tuple[str, ...], int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for label_values, value in values.items():
        family.add_metric(list(label_values), value)
    return family


class ProcessMetrics:
    """Every metric of ``stockstream process``: :attr:`hot` for the per-record ones, the rest below."""

    def __init__(self, registry: CollectorRegistry = REGISTRY, max_symbols: int = DEFAULT_MAX_SYMBOLS) -> None:
        self.hot = HotPathMetrics(max_symbols=max_symbols)
        registry.register(self.hot)
        self.state_resets = Counter(
            "stockstream_process_state_resets_total",
            "Symbol states that could not be used (other strategy/timeframes, malformed) and were"
            " started afresh", ["reason"], registry=registry)
        self.instruments_refused = Counter(
            "stockstream_process_instruments_refused_total",
            "Ticks dead-lettered because their instrument is not on INSTRUMENT_ALLOW (instrument_not_allowed)"
            " or new beyond its partition's share of MAX_INSTRUMENTS (instrument_limit)", ["reason"],
            registry=registry)
        self.consumer_lag = Gauge(
            "stockstream_process_consumer_lag_records",
            "Records between the committed position and the end of each assigned input partition"
            " (librdkafka statistics)", ["topic", "partition"], registry=registry)
        self.recovering = Gauge(
            "stockstream_process_state_recovering",
            "1 while state is being restored from the changelog (input processing paused)",
            registry=registry)
        self.recovery_remaining = Gauge(
            "stockstream_process_state_recovery_remaining_records",
            "Changelog records still to restore, by changelog partition (updated every 10 s)",
            ["partition"], registry=registry)
        self.recoveries = Counter(
            "stockstream_process_state_recoveries_total",
            "Recovery phases run (after an assignment that needed a state check)", registry=registry)
        self.recovered_partitions = Counter(
            "stockstream_process_state_recovered_partitions_total",
            "Store partitions restored from the changelog", registry=registry)
        self.changelog_records = Gauge(
            "stockstream_process_changelog_records",
            "Records in the state changelog (before compaction), by changelog partition assigned to this"
            " instance", ["partition"], registry=registry)
        self.recovery_seconds = Gauge(
            "stockstream_process_state_recovery_last_duration_seconds",
            "Wall time of the last recovery phase", registry=registry)
