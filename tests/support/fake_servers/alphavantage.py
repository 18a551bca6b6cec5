"""A local HTTP server that answers like Alpha Vantage's ``/query`` (scripted bodies, recorded requests).

Usage::

    with FakeAlphaVantage([Reply.json(rate_body("BTC", "USD", "65000.5")), Reply(500, "oops")]) as server:
        ... ALPHAVANTAGE_BASE_URL=server.url ...
        server.requests  # [{"function": "CURRENCY_EXCHANGE_RATE", "apikey": ..., ...}, ...]

Replies are served in order; once the script is used up, ``after`` answers every
further request (default: the last reply again).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = ""
    content_type: str = "application/json"

    @classmethod
    def json(cls, payload: object, status: int = 200) -> Reply:
        return cls(status, json.dumps(payload))


# Error bodies as Alpha Vantage sends them (HTTP 200), texts as seen in the wild.
DAILY_LIMIT = {"Information": (
    "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. Please subscribe"
    " to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove all daily rate"
    " limits.")}
BURST_LIMIT = {"Information": (
    "Thank you for using Alpha Vantage! Please consider spreading out your free API requests more sparingly"
    " (1 request per second). You may subscribe to any of the premium plans at"
    " https://www.alphavantage.co/premium/ to lift the free key rate limit (25 requests per day) and instantly"
    " remove all daily rate limits.")}
PREMIUM = {"Information": (
    "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of the premium"
    " plans at https://www.alphavantage.co/premium/ to instantly unlock all premium endpoints")}
DEMO_KEY = {"Information": (
    "The **demo** API key is for demo purposes only. Please claim your free API key at"
    " (https://www.alphavantage.co/support/#api-key) to explore our full API offerings. It takes fewer than"
    " 20 seconds.")}
NOTE = {"Note": (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls"
    " per day. Please visit https://www.alphavantage.co/premium/ if you would like to target a higher API call"
    " frequency.")}
ERROR_MESSAGE = {"Error Message": (
    "the parameter apikey is invalid or missing. Please claim your free API key on"
    " (https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds.")}


def rate_body(from_code: str, to_code: str, rate: str, refreshed: str = "2024-05-01 12:00:00",
              bid: str | None = None, ask: str | None = None, time_zone: str = "UTC") -> dict[str, object]:
    """A ``CURRENCY_EXCHANGE_RATE`` success body (bid/ask only when given)."""
    inner = {
        "1. From_Currency Code": from_code, "2. From_Currency Name": "Bitcoin",
        "3. To_Currency Code": to_code, "4. To_Currency Name": "United States Dollar",
        "5. Exchange Rate": rate, "6. Last Refreshed": refreshed, "7. Time Zone": time_zone,
    }
    if bid is not None:
        inner["8. Bid Price"] = bid
    if ask is not None:
        inner["9. Ask Price"] = ask
    return {"Realtime Currency Exchange Rate": inner}


def daily_body(days: dict[str, tuple[str, str]], market: str = "USD", generation: int = 2) -> dict[str, object]:
    """A ``DIGITAL_CURRENCY_DAILY`` body; ``days`` maps ``YYYY-MM-DD`` to (close, volume).

    ``generation=1`` uses the old names (``"4a. close (USD)"`` …), ``2`` the new (``"4. close"`` …).
    """
    series: dict[str, dict[str, str]] = {}
    for day, (close, volume) in days.items():
        if generation == 1:
            series[day] = {
                f"1a. open ({market})": close, "1b. open (USD)": close, f"2a. high ({market})": close,
                "2b. high (USD)": close, f"3a. low ({market})": close, "3b. low (USD)": close,
                f"4a. close ({market})": close, "4b. close (USD)": close, "5. volume": volume,
                "6. market cap (USD)": "0",
            }
        else:
            series[day] = {"1. open": close, "2. high": close, "3. low": close, "4. close": close,
                           "5. volume": volume}
    return {
        "Meta Data": {"1. Information": "Daily Prices and Volumes for Digital Currency",
                      "2. Digital Currency Code": "BTC", "4. Market Code": market,
                      "6. Last Refreshed": max(days) if days else "", "7. Time Zone": "UTC"},
        "Time Series (Digital Currency Daily)": series,
    }


@dataclass
class FakeAlphaVantage:
    script: list[Reply] = field(default_factory=list)
    after: Reply | None = None
    requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._served = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                reply = fake._next(parts.path, dict(parse_qsl(parts.query)))
                body = reply.body.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet test output
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-alphavantage", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _next(self, path: str, params: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append({"_path": path, **params})
            if path != "/query":
                return Reply(404, "not found", "text/plain")
            if self._served < len(self.script):
                reply = self.script[self._served]
            else:
                reply = self.after or (self.script[-1] if self.script else Reply(500, "no script"))
            self._served += 1
            return reply

    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> FakeAlphaVantage:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAlphaVantage:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
