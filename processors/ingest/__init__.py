"""The ingestion service: sources → validated ``Tick`` events on the ticks topic (bad input → DLQ).

Entry point: :func:`processors.ingest.app.main` (``stockstream ingest``).
"""
