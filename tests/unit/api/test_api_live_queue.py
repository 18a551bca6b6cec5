"""A ``/live`` client's queue is bounded: a client that does not keep up loses its oldest updates, counted.

The send timeout (a client that stops reading altogether is dropped) is tested over a real socket
in tests/integration/views/test_views_api_auth.py; this is the queue in front of it
(``API_LIVE_QUEUE_MAX``), which bounds the memory one slow client can hold.
"""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from stockstream.api.live import DROPPED, LiveHub


def drain(queue: asyncio.Queue[tuple[str, str]]) -> list[str]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait()[1])
    return items


@given(limit=st.integers(min_value=1, max_value=50), offered=st.integers(min_value=0, max_value=200))
def test_the_queue_keeps_the_newest_updates_and_counts_the_dropped(limit: int, offered: int) -> None:
    hub = LiveHub(lambda: None, "updates", "notifications", queue_max=limit)  # type: ignore[arg-type,return-value]
    subscriber = hub.subscribe(None, client="k1")
    dropped_before = DROPPED._value.get()
    for index in range(offered):
        subscriber.offer("update", str(index))
        assert subscriber.queue.qsize() <= limit
    kept = drain(subscriber.queue)
    assert kept == [str(index) for index in range(max(0, offered - limit), offered)]
    assert subscriber.dropped == max(0, offered - limit)
    assert DROPPED._value.get() - dropped_before == subscriber.dropped
    hub.unsubscribe(subscriber)
    assert hub.connections_of("k1") == 0
