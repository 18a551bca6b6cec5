"""Build the configured source from :class:`IngestSettings` (the only place that knows them all)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from processors.ingest.settings import IngestSettings
from processors.ingest.sources.alphavantage.budget_file import budget_path
from processors.ingest.sources.alphavantage.source import AlphaVantageConfig, AlphaVantageSource
from processors.ingest.sources.base import Source
from processors.ingest.sources.exchanges.binance import BinanceAdapter
from processors.ingest.sources.exchanges.coinbase import CoinbaseAdapter
from processors.ingest.sources.exchanges.feed import ExchangeAdapter, FeedConfig, WebSocketFeed
from processors.ingest.sources.exchanges.kraken import KrakenAdapter
from processors.ingest.sources.file import FileSource
from processors.ingest.sources.file_position import FilePositions
from processors.ingest.sources.simulator import SimulatorConfig, SimulatorSource
from processors.ingest.validation import TimeBounds
from processors.runtime.kafka_admin import topic_id


def time_bounds(settings: IngestSettings) -> TimeBounds:
    return TimeBounds(earliest=settings.earliest_timestamp, max_future=settings.max_future())


def build_source(settings: IngestSettings, now: Callable[[], datetime]) -> Source:
    bounds = time_bounds(settings)
    symbols = settings.active_symbols()
    if settings.source == "simulator":
        return SimulatorSource(SimulatorConfig(
            symbols=symbols, seed=settings.sim_seed, rate_per_s=settings.simulator_rate(), count=settings.sim_count,
            start=settings.sim_start, step=timedelta(seconds=settings.sim_step_seconds), volume=settings.sim_volume,
        ), bounds, now)
    if settings.source == "file":
        ticks = settings.topics().ticks.name
        positions = FilePositions(settings.file_position_dir, f"{settings.bootstrap_servers}\n{ticks}",
                                  lambda: topic_id(settings, ticks), from_start=settings.file_from_start)
        return FileSource(settings.file_paths, bounds, now, speed=settings.file_speed, fmt=settings.file_format,
                          venue=settings.file_venue, positions=positions,
                          checkpoint_lines=settings.file_checkpoint_lines)
    if settings.source == "alphavantage":
        if settings.alphavantage_api_key is None:  # the settings validator already refuses this
            raise ValueError("ALPHAVANTAGE_API_KEY is required")
        return AlphaVantageSource(AlphaVantageConfig(
            base_url=settings.alphavantage_base_url, api_key=settings.alphavantage_api_key, symbols=symbols,
            interval_s=settings.message_interval, daily_budget=settings.alphavantage_daily_budget,
            history=settings.alphavantage_history, timeout_s=settings.alphavantage_timeout_seconds,
            retry_initial_s=settings.retry_initial_seconds, retry_max_s=settings.retry_max_seconds,
            budget_file=budget_path(settings.alphavantage_budget_dir,
                                    settings.alphavantage_api_key.get_secret_value()),
        ), bounds, now)
    adapter: ExchangeAdapter
    if settings.source == "coinbase":
        adapter = CoinbaseAdapter(settings.coinbase_ws_url, symbols, bounds)
    elif settings.source == "binance":
        adapter = BinanceAdapter(settings.binance_ws_url, symbols, bounds)
    else:
        adapter = KrakenAdapter(settings.kraken_ws_url, symbols, bounds)
    return WebSocketFeed(adapter, FeedConfig(
        idle_timeout_s=settings.ws_idle_timeout_seconds, open_timeout_s=settings.ws_open_timeout_seconds,
        retry_initial_s=settings.retry_initial_seconds, retry_max_s=settings.retry_max_seconds,
    ), now)
