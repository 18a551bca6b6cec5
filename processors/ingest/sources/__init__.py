"""Ingestion sources: one module (or package) per source, all behind :class:`~.base.Source`."""
