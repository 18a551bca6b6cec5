"""PySpark batch jobs: backfills and backtests over the Kafka log."""
