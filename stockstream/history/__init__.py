"""History a person can scroll: candles, indicator snapshots and signals over any time range, page by page.

The Redis views hold the recent past only (capped: 1,000 candles and indicator snapshots, 500
signals per instrument). The Parquet history — what ``stockstream backfill`` writes, one dataset per
kind partitioned by ``symbol`` and ``date`` — holds everything that was backfilled. A page is
served from the views when they hold it, from the Parquet history otherwise, in the same response
schema, with ``source`` saying which (``views`` or ``history``) and ``next_cursor`` to ask for the
page just before it.

- :mod:`stockstream.history.cursor` — the ordering key of each kind and its opaque cursor text;
- :mod:`stockstream.history.parquet` — :class:`HistoryStore`, the Parquet reader (pyarrow datasets);
- :mod:`stockstream.history.pages` — :class:`Pager`, which decides the source and assembles a page
  (used by the API routes and ``stockstream query``).
"""
