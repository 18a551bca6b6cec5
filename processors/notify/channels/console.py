"""Console channel: one line per notification on standard output (the default channel)."""

from __future__ import annotations

import sys
from typing import TextIO

from processors.notify.notification import Notification


class ConsoleSender:
    """Prints ``NOTIFY <channel> <one line>``; always succeeds unless stdout is gone."""

    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    def send(self, notification: Notification) -> None:
        stream = self._stream or sys.stdout
        stream.write(f"NOTIFY {self.name} {notification.one_line}\n")
        stream.flush()

    def close(self) -> None:
        """Nothing to release."""
