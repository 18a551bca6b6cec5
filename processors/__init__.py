"""Stream processors (ingestion, indicators/signals, materializer, notifier) and their pure core."""
