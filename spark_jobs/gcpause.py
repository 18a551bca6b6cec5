"""The cyclic garbage collector paused around a Spark job's bulk Python work.

A backfill group holds every decoded tick, its lineage and its rows until its frame is built: some
millions of live container objects. CPython's collector walks all of them at each full collection,
and full collections come more often as that number grows (each time it rises by a quarter), so a
500,000-tick group spent a fifth or more of its CPU in collections that found nothing to free (the
records, events and rows hold no reference cycles; a few cycles that other code may leave wait until
the collector runs again). Reference counting still frees everything as
usual; only the search for cycles waits until the work is done.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (nested or in a process where it is off: left as found)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
