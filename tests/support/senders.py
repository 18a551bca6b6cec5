"""Calling a channel sender from a test: one attempt, whichever kind of sender it is.

The HTTP channels' ``send`` is a coroutine (the lane runs it on its delivery window's event
loop); console, email and browser senders block. :func:`send_now` runs either to completion on
the calling thread. HTTP senders keep their connections alive on the loop that opened them, so
every call runs on the same loop, as in a lane.
"""

from __future__ import annotations

import asyncio
import inspect

from processors.notify.channels import AsyncSender, Sender
from processors.notify.notification import Notification

_LOOP = asyncio.new_event_loop()


def send_now(sender: Sender | AsyncSender, notification: Notification) -> None:
    """One attempt of ``sender`` (raises what the sender raises)."""
    result = sender.send(notification)
    if inspect.isawaitable(result):
        _LOOP.run_until_complete(result)
