"""The Spark backfill: range, plan, grouped pipeline step, sinks."""
