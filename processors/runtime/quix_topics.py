"""Quix Streams start-up: a changelog topic the broker has created but does not list yet.

When a stateful step is registered, Quix creates the store's changelog topic (if it is new),
waits for the controller's acknowledgement, then looks the topic up once in the broker's
metadata. The controller acknowledges before the broker serves the new metadata; on a busy
machine that gap outlasts Quix's one lookup, and the start-up fails with
``TopicNotFoundError`` on the changelog (seen in the CI soak and the notifier chaos runs; the
service then crash-restarts). :func:`register_with_changelog` calls the registration again until
the topic is listed: the topic exists by then (the failed attempt created it), so the next
lookup finds it — or the registration creates it again ("already exists") and looks again.

Called by the stream processor (its ``pipeline`` store), each notifier lane (its ledger) and
the composite service, around the one call that registers their store. A topic still missing
after ``timeout_s`` raises the last ``TopicNotFoundError`` (the service's start-up fails, as before).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from quixstreams.models.topics.exceptions import TopicNotFoundError

log = logging.getLogger(__name__)

Registered = TypeVar("Registered")


def register_with_changelog(register: Callable[[], Registered], *, timeout_s: float = 60.0,
                            on_retry: Callable[[TopicNotFoundError], None] | None = None,
                            clock: Callable[[], float] = time.monotonic,
                            sleep: Callable[[float], None] = time.sleep) -> Registered:
    """``register()`` (a store registration, e.g. ``sdf.update(..., stateful=True)``), called again while
    Quix cannot find the changelog topic it just created, for up to ``timeout_s``.

    ``register`` must be safe to call again after a ``TopicNotFoundError`` (Quix registers the store
    only once its changelog topic is found). ``on_retry`` is told of each retry (tests).
    """
    deadline = clock() + timeout_s
    delay = 0.2
    while True:
        try:
            return register()
        except TopicNotFoundError as error:
            if clock() + delay > deadline:
                raise
            log.info("%s (the broker's metadata lags the topic's creation); looking again in %.1fs", error, delay)
            if on_retry is not None:
                on_retry(error)
            sleep(delay)
            delay = min(delay * 2, 2.0)
