"""What a notification says, built from a :class:`~schemas.events.Signal` (pure, no I/O).

Every channel renders the same :class:`Notification`: symbol, side, rule,
timeframe, price, the indicator values behind the signal, the event time, and a
link to the dashboard when ``NOTIFY_DASHBOARD_URL`` is set. Channels only change
the layout (Slack blocks, a Discord embed, Telegram HTML, a mail body).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from schemas.events import Signal


def format_number(value: float | None) -> str:
    """A price or indicator value as a trader reads it: ``43,251.20``, ``30.42``, ``0.0001234``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.2f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude == 0:
        return "0"
    return f"{value:.4g}"


def format_time(moment: datetime) -> str:
    """UTC time with milliseconds: ``2024-05-01 12:34:56.789 UTC``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


def dashboard_link(base_url: str | None, signal: Signal) -> str | None:
    """Link to the signal on the dashboard: ``{base}/?symbol=…&venue=…&timeframe=…&signal=<signal_id>``."""
    if not base_url:
        return None
    query = urlencode({"symbol": signal.symbol, "venue": signal.venue, "timeframe": signal.timeframe,
                       "signal": signal.signal_id})
    return f"{base_url.rstrip('/')}/?{query}"


@dataclass(frozen=True)
class Notification:
    """The channel-independent content of one alert.

    Built cheaply by :func:`render`; each part is computed when a channel asks for it, so a channel
    pays only for what it shows (the console one line, a webhook its title and text).
    """

    signal: Signal
    dashboard_url: str | None = None

    @property
    def signal_id(self) -> str:
        return self.signal.signal_id

    @property
    def price(self) -> str:
        return format_number(self.signal.price)

    @property
    def event_time(self) -> str:
        return format_time(self.signal.ts_event)

    @property
    def title(self) -> str:
        signal = self.signal
        return f"{signal.side} {signal.symbol} · {signal.rule} ({signal.timeframe})"

    @property
    def headline(self) -> str:
        return f"{self.signal.side} {self.signal.symbol} at {self.price}"

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        signal = self.signal
        return (("Side", signal.side), ("Symbol", signal.symbol), ("Venue", signal.venue), ("Price", self.price), ("Rule", signal.rule),
                ("Timeframe", signal.timeframe), ("Event time", self.event_time))

    @property
    def indicators(self) -> tuple[tuple[str, str], ...]:
        return tuple((name, format_number(value)) for name, value in sorted(self.signal.indicators.items()))

    @property
    def url(self) -> str | None:
        return dashboard_link(self.dashboard_url, self.signal)

    @property
    def text(self) -> str:
        """Plain-text body (console, mail, webhook ``text``, Slack fallback)."""
        lines = [self.headline]
        lines += [f"{label}: {value}" for label, value in self.fields]
        if self.indicators:
            lines.append("Indicators: " + ", ".join(f"{name} {value}" for name, value in self.indicators))
        if self.url:
            lines.append(f"Dashboard: {self.url}")
        return "\n".join(lines)

    @property
    def one_line(self) -> str:
        """Everything on one line (console channel)."""
        indicators = " ".join(f"{name}={value}" for name, value in self.indicators)
        parts = [self.headline, f"[{self.signal.timeframe} {self.signal.rule}]", indicators,
                 self.event_time, f"id={self.signal_id}"]
        if self.url:
            parts.append(self.url)
        return " ".join(part for part in parts if part)


def render(signal: Signal, dashboard_url: str | None = None) -> Notification:
    """The notification for ``signal`` (deterministic: same signal, same text)."""
    return Notification(signal, dashboard_url)
