"""Backtests of signal rule sets over backfill output."""
