"""``stockstream serve`` as a real process: the /live Server-Sent Events relay of views updates and notifications."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest

from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputTopics
from processors.materialize.store import ViewStore
from schemas.topics import TopicRegistry
from tests.integration.views.streams import make_stream
from tests.integration.views.test_views_store import log_of
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.integration
METRICS: dict[str, str] = {}  # API base URL → its /metrics URL (serve's metrics port)


@pytest.fixture
def server(stack, views_prefix) -> Iterator[str]:
    port = free_port()
    metrics_port = free_port()
    service = ServiceProcess(["serve", "--port", str(port)],
                             {"REDIS_URL": stack.redis_url, "REDIS_KEY_PREFIX": views_prefix,
                              "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "API_LIVE_PING_SECONDS": "1",
                              "METRICS_PORT": str(metrics_port)})
    base = f"http://127.0.0.1:{port}"
    METRICS[base] = f"http://127.0.0.1:{metrics_port}/metrics"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).json().get("live_relay") is True
        except (httpx.HTTPError, ValueError):
            return False

    try:
        wait_until(healthy, timeout_s=120, message=f"serve to start: {service.output[-1500:]}")
        yield base
    finally:
        service.terminate()


class SseClient:
    """Reads an SSE stream in a thread; ``events`` receives (event, data) pairs."""

    def __init__(self, url: str) -> None:
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.url = url
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event, data = "message", []
        with httpx.stream("GET", self.url, timeout=httpx.Timeout(5, read=30)) as answer:
            self.headers = answer.headers
            for line in answer.iter_lines():
                if self.stop.is_set():
                    return
                if line == "":
                    if data:
                        self.events.put((event, "\n".join(data)))
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())

    def next(self, wanted: set[str], timeout_s: float = 120) -> tuple[str, dict]:
        while True:
            event, data = self.events.get(timeout=timeout_s)
            if event in wanted:
                return event, json.loads(data)

    def drain(self, wanted: set[str], timeout_s: float = 1.5) -> list[tuple[str, dict]]:
        found = []
        try:
            while True:
                found.append(self.next(wanted, timeout_s))
        except queue.Empty:
            return found


@contextmanager
def sse(url: str) -> Iterator[SseClient]:
    client = SseClient(url)
    try:
        yield client
    finally:
        client.stop.set()


def test_live_relays_one_venue_when_asked_for_an_instrument(server, redis_client, views_prefix):
    keys = ViewKeys(views_prefix)
    stream = make_stream(count=40, seed=21, venue="coinbase")
    stream.extend(make_stream(count=40, seed=22, venue="kraken", first_offset=40))
    planner = BatchPlanner(keys, InputTopics.from_registry(TopicRegistry(prefix="x.")), Caps(),
                           lambda: datetime.now(UTC))
    with sse(f"{server}/live?instrument=BTC-USD@kraken") as kraken, sse(f"{server}/live?symbol=BTC-USD") as both:
        assert kraken.next({"ready"})[1]["instruments"] == ["BTC-USD@kraken"]
        both.next({"ready"})
        ViewStore(redis_client, keys).apply(planner.plan(log_of(stream)))
        kinds = {"tick", "indicators", "signal"}
        mine = kraken.drain(kinds)
        assert mine and {(data["symbol"], data["venue"]) for _, data in mine} == {("BTC-USD", "kraken")}
        assert sum(kind == "indicators" for kind, _ in mine) == sum(i.venue == "kraken" for i in stream.indicators)
        assert {data["venue"] for _, data in both.drain(kinds)} == {"coinbase", "kraken"}
    with httpx.Client() as client:
        assert client.get(f"{server}/live", params={"instrument": "BTC-USD"}).status_code == 422


def test_live_relays_updates_for_the_chosen_symbols_and_notifications(server, redis_client, views_prefix):
    keys = ViewKeys(views_prefix)
    stream = make_stream(count=70, seed=12)
    stream.extend(make_stream("ETH-USD", count=30, price=3000.0, seed=13))
    planner = BatchPlanner(keys, InputTopics.from_registry(TopicRegistry(prefix="x.")), Caps(),
                           lambda: datetime.now(UTC))
    with sse(f"{server}/live?symbol=BTC-USD") as btc, sse(f"{server}/live") as everyone:
        assert btc.next({"ready"})[1]["symbols"] == ["BTC-USD"]
        assert everyone.next({"ready"})[1]["symbols"] is None
        ViewStore(redis_client, keys).apply(planner.plan(log_of(stream)))
        kinds = {"tick", "indicators", "candle", "signal", "recommendation", "daily"}
        mine = btc.drain(kinds)
        assert {kind for kind, _ in mine} == kinds
        assert {data["symbol"] for _, data in mine} == {"BTC-USD"}
        assert sum(kind == "signal" for kind, _ in mine) == sum(s.symbol == "BTC-USD" for s in stream.signals)
        assert sum(kind == "indicators" for kind, _ in mine) == sum(i.symbol == "BTC-USD" for i in stream.indicators)
        assert {data["symbol"] for _, data in everyone.drain(kinds)} == {"BTC-USD", "ETH-USD"}

        # The notifier's messages: malformed ones are skipped (and counted), valid ones relayed as-is.
        redis_client.publish(keys.live_notifications, b"not json")
        redis_client.publish(keys.live_notifications, json.dumps({"title": 1}))
        redis_client.publish(keys.live_updates, b'{"v":1,"updates":"nope"}')
        body = {"signal_id": stream.signals[0].signal_id, "title": "BUY BTC-USD <b>now</b>",
                "text": "rsi_reversal at 65,000", "url": "http://127.0.0.1/x",
                "signal": stream.signals[0].model_dump(mode="json")}
        redis_client.publish(keys.live_notifications, json.dumps(body))
        assert btc.next({"notification"}) == ("notification", body)
        assert everyone.next({"notification"}) == ("notification", body)
        eth_only = dict(body, signal={"symbol": "ETH-USD"})
        redis_client.publish(keys.live_notifications, json.dumps(eth_only))
        assert everyone.next({"notification"})[1]["signal"] == {"symbol": "ETH-USD"}
        assert btc.drain({"notification"}, timeout_s=1) == []
        assert btc.headers["content-type"].startswith("text/event-stream")

    metrics = httpx.get(METRICS[server]).text
    assert 'stockstream_api_live_malformed_total{channel="notifications"} 2.0' in metrics
    assert 'stockstream_api_live_malformed_total{channel="updates"} 1.0' in metrics
    wait_until(lambda: "stockstream_api_live_clients 0.0" in httpx.get(METRICS[server]).text, timeout_s=60,
               message="disconnected clients to be dropped")
