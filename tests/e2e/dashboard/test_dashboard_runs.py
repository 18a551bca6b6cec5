"""The dashboard's run selector in a real browser (Debian's Chromium via Playwright), issue 16.

Real services: a live ``stockstream materialize``, a run's materializer (``STOCKSTREAM_RUN=alt``,
reading the run's own topics ``runs.alt.*``), ``stockstream serve``, and two records on the
``runs`` topic (``alt`` with views, ``bare`` without). Checks: the page opens on live; the run
selector lists live and ``alt`` only (from ``GET /runs``); choosing ``alt`` shows that run's
signals and indicators (every view request carries ``?run=alt``), its own instruments, no live
push; the choice is kept in the URL; going back to live shows live's views again and reconnects
``/live``; no console error anywhere (CSP violations included).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from playwright.sync_api import expect

from processors.materialize.settings import MaterializeSettings
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.runs import RunLog
from schemas.runs import Namespace, Run, StrategyRef
from tests.e2e.dashboard.test_dashboard import CHROMIUM, free_port, page  # noqa: F401 - the page fixture
from tests.integration.views.streams import Stream, make_stream, produce_stream
from tests.support.kafka_tools import delete_topics, wait_until
from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _run(run_id: str, redis_prefix: str | None, topic_prefix: str, created: datetime) -> Run:
    return Run(run_id=run_id, kind="replay", state="done", description=f"the {run_id} run",
               strategy=StrategyRef(version="0123456789abcdef"), code_version="test",
               namespace=Namespace(topic_prefix=topic_prefix, redis_prefix=redis_prefix),
               expires_at=created + timedelta(days=7), ts_event=created, ts_init=created)


class Views:
    def __init__(self, base: str, live: Stream, run: Stream) -> None:
        self.base, self.live, self.run = base, live, run


@pytest.fixture
def views(stack, namespace) -> Iterator[Views]:
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is missing: apt-get install -y chromium (ops/setup/system-deps.sh does it)")
    live_settings = MaterializeSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace,
                                        redis_url=stack.redis_url, redis_key_prefix=namespace)
    run_settings = live_settings.model_copy(update={"run_id": "alt"})
    ensure_topics(live_settings, live_settings.topics().all())
    ensure_topics(run_settings, run_settings.topics().all())
    now = datetime.now(UTC).replace(microsecond=0)
    live = make_stream(count=240, start=now - timedelta(seconds=240), seed=7)
    produce_stream(stack.kafka_bootstrap, live_settings.topics(), live)
    # The run's derived events (another price path, so other signals), and an instrument live never saw.
    run = make_stream(count=240, price=52_000.0, start=now - timedelta(seconds=240), seed=21)
    run.extend(make_stream("SOL-USD", count=90, price=150.0, start=now - timedelta(seconds=90), seed=22))
    run_registry = run_settings.topics()
    run_stream = Stream()
    run_stream.indicators, run_stream.candles = run.indicators, run.candles
    run_stream.signals, run_stream.daily = run.signals, run.daily
    produce_stream(stack.kafka_bootstrap, run_registry, run_stream)  # no ticks: a run never writes the live log
    log = RunLog(live_settings)
    log.ensure()
    log.publish(_run("alt", f"{namespace}run:alt:", run_registry.derived_prefix, now))
    log.publish(_run("bare", None, f"{namespace}runs.bare.", now + timedelta(seconds=1)))
    log.close()
    env = {"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "REDIS_URL": stack.redis_url,
           "STOCKSTREAM_TOPIC_PREFIX": namespace, "REDIS_KEY_PREFIX": namespace, "METRICS_PORT": "0"}
    client = redis.Redis.from_url(stack.redis_url)
    port = free_port()
    materializers = [ServiceProcess(["materialize"], env), ServiceProcess(["materialize"], env | {"STOCKSTREAM_RUN": "alt"})]
    server = ServiceProcess(["serve", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: client.zcard(f"{namespace}ind:BTC-USD@test:tick") == 240
                   and client.zcard(f"{namespace}run:alt:ind:BTC-USD@test:tick") == 240
                   and client.zcard(f"{namespace}run:alt:ind:SOL-USD@test:tick") == 90, timeout_s=90,
                   message="live and run views; logs:\n" + "\n".join(m.output[-1500:] for m in materializers))

        def up() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=1).json().get("live_relay") is True
            except (httpx.HTTPError, ValueError):
                return False

        wait_until(up, timeout_s=120, message=f"serve; log:\n{server.output[-1500:]}")
        yield Views(base, live, run)
    finally:
        server.terminate()
        for materializer in materializers:
            materializer.terminate()
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        delete_topics(stack.kafka_bootstrap, namespace)


def test_runs_endpoint_lists_live_and_every_run_with_whether_its_views_exist(views):
    body = httpx.get(f"{views.base}/runs").json()
    assert [(run["run_id"], run["kind"], run["views"]) for run in body["runs"]] == [
        ("live", "live", True), ("bare", "replay", False), ("alt", "replay", True)]  # live, then newest first
    assert body["runs"][2]["description"] == "the alt run"
    assert body["runs"][2]["strategy_version"] == "0123456789abcdef"


def test_run_selector_shows_a_runs_views_and_back_to_live(views, page):  # noqa: F811 - the fixture
    tab, errors, dialogs = page
    asked: list[str] = []
    tab.on("request", lambda request: asked.append(request.url) if "/instruments" in request.url else None)
    tab.goto(views.base + "/")
    body = tab.locator("body")
    expect(body).to_have_attribute("data-loaded", "BTC-USD/tick", timeout=60_000)
    expect(body).to_have_attribute("data-run", "live")
    expect(tab.locator("#connection")).to_have_text("live")
    # live by default; the selector offers live and the run with views (not 'bare', which has none)
    assert tab.eval_on_selector_all("#run option", "options => options.map(o => o.value)") == ["live", "alt"]
    expect(tab.locator("#run")).to_have_value("live")
    assert tab.eval_on_selector_all("#symbol option", "options => options.map(o => o.value)") == ["BTC-USD"]
    live_signal = max(views.live.signals, key=lambda s: s.ts_event)  # the newest: first in the list
    run_signal = max((s for s in views.run.signals if s.symbol == "BTC-USD"), key=lambda s: s.ts_event)
    assert live_signal.signal_id != run_signal.signal_id
    expect(tab.locator(f'#signals li[data-id="{live_signal.signal_id}"]')).to_be_visible()
    assert not [url for url in asked if "run=" in url]

    # The run: its signals and indicator values, its instruments, every view request with ?run=alt, no live push.
    tab.select_option("#run", "alt")
    expect(body).to_have_attribute("data-run", "alt", timeout=60_000)
    expect(tab.locator(f'#signals li[data-id="{run_signal.signal_id}"]')).to_be_visible()
    expect(tab.locator(f'#signals li[data-id="{live_signal.signal_id}"]')).to_have_count(0)
    run_rsi = next(i for i in reversed(views.run.indicators)
                   if i.symbol == "BTC-USD" and i.timeframe == "tick").values["rsi_14"]
    expect(tab.locator("#indicators")).to_contain_text(f"{run_rsi:,.2f}")
    expect(tab.locator("#connection")).to_have_text("run alt (not live)")
    assert tab.eval_on_selector_all("#symbol option", "options => options.map(o => o.value)") == ["BTC-USD", "SOL-USD"]
    run_requests = [url for url in asked if "/instruments/test/BTC-USD/" in url and "run=alt" in url]
    assert len(run_requests) >= 4, asked  # latest, recommendation, indicators, signals, daily
    assert "run%3Dalt" not in tab.url and tab.url.endswith("%7Calt")  # #BTC-USD|test|tick|alt

    # The run's own instrument, then a reload of the page keeps the run (it is in the URL).
    tab.select_option("#symbol", "SOL-USD")
    expect(body).to_have_attribute("data-loaded", "SOL-USD/tick", timeout=60_000)
    tab.reload()
    expect(body).to_have_attribute("data-loaded", "SOL-USD/tick", timeout=60_000)
    expect(tab.locator("#run")).to_have_value("alt")
    expect(body).to_have_attribute("data-run", "alt")

    # Back to live: live's views (SOL-USD is the run's only: the default symbol) and the live connection.
    tab.select_option("#run", "live")
    expect(body).to_have_attribute("data-run", "live", timeout=60_000)
    expect(body).to_have_attribute("data-loaded", "BTC-USD/tick")
    expect(tab.locator(f'#signals li[data-id="{live_signal.signal_id}"]')).to_be_visible()
    expect(tab.locator("#connection")).to_have_text("live", timeout=60_000)
    assert errors == [], errors
    assert dialogs == [], dialogs
