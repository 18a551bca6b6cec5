"""The dashboard in a real browser (Debian's Chromium via Playwright) on ``stockstream serve`` + ``materialize``.

Checks: the page loads without console errors (CSP violations count as errors), shows the
latest price, indicators, recommendation, signals and daily summary of BTC-USD from a
realistic stream; a signal produced while the page is open appears live; values from the
system that contain HTML (an indicator name, a notification's title and text) are shown as
text, never executed. Screenshots go to test-artifacts/ (and to docs/dashboard.png when
STOCKSTREAM_DOCS_SCREENSHOT=1).

It runs twice: authentication off (loopback, as ``make run``), and API keys on, where the page
first shows the sign-in panel, the key typed there becomes an HttpOnly, Secure, SameSite=Strict
session cookie (the page keeps no key), and /live follows with that cookie.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from playwright.sync_api import Page, expect, sync_playwright

from processors.materialize.settings import MaterializeSettings
from processors.runtime.kafka_admin import ensure_topics
from schemas.events import IndicatorSnapshot, Lineage, Signal, Tick, encode, make_signal_id
from stockstream.api.keys import KeyStore
from tests.integration.views.streams import Stream, make_stream, produce_stream
from tests.support.kafka_tools import delete_topics, produce, wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
XSS = "<img src=x onerror=alert(1)>"


class Dashboard:
    def __init__(self, base: str, settings: MaterializeSettings, client: redis.Redis, token: str | None,
                 stream: Stream) -> None:
        self.base = base
        self.settings = settings
        self.redis = client
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.stream = stream

    def snapshots(self, symbol: str) -> list[IndicatorSnapshot]:
        """The instrument's tick snapshots (venue test), oldest first."""
        return [i for i in self.stream.indicators if i.symbol == symbol and i.venue == "test" and i.timeframe == "tick"]

    def markers_expected(self, symbol: str, points: int) -> int:
        """The tick signals of the last ``points`` history points: the markers of the loaded range."""
        first = self.snapshots(symbol)[-points].ts_event
        return sum(1 for s in self.stream.signals
                   if s.symbol == symbol and s.venue == "test" and s.timeframe == "tick" and s.ts_event >= first)


@pytest.fixture(params=["open", "key"])
def dashboard(stack, namespace, request) -> Iterator[Dashboard]:
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is missing: apt-get install -y chromium (ops/setup/system-deps.sh does it)")
    settings = MaterializeSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace,
                                   redis_url=stack.redis_url, redis_key_prefix=namespace)
    ensure_topics(settings, settings.topics().all())
    now = datetime.now(UTC).replace(microsecond=0)
    stream = make_stream(count=420, start=now - timedelta(seconds=420), seed=7)
    stream.extend(make_stream("ETH-USD", count=120, price=3100.0, start=now - timedelta(seconds=120), seed=8))
    # BTC-USD on a second venue: the venue picker chooses between the two series.
    stream.extend(make_stream(count=60, price=64_500.0, start=now - timedelta(seconds=60), seed=9, venue="xchange"))
    # A sub-cent instrument (issue 15): prices with 5 decimals, MACD values around 0.0003.
    stream.extend(make_stream("DOGE-USD", count=300, price=0.121, start=now - timedelta(seconds=300), seed=11,
                              decimals=5))
    last = [i for i in stream.indicators if i.symbol == "ETH-USD" and i.timeframe == "tick"][-1]
    # An indicator whose *name* is HTML (on ETH-USD): it must be displayed as text.
    stream.indicators.append(last.model_copy(update={"values": {**last.values, XSS: 1.0},
                                                     "ts_event": last.ts_event + timedelta(milliseconds=500)}))
    produce_stream(stack.kafka_bootstrap, settings.topics(), stream)
    port = free_port()
    env = {"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "REDIS_URL": stack.redis_url,
           "STOCKSTREAM_TOPIC_PREFIX": namespace, "REDIS_KEY_PREFIX": namespace, "METRICS_PORT": "0"}
    client = redis.Redis.from_url(stack.redis_url)
    token: str | None = None
    serve_env = dict(env)
    if request.param == "key":
        _record, token = KeyStore(client, f"{namespace}auth:").create("dashboard-e2e", ["read"])
        serve_env |= {"API_AUTH": "on", "API_KEYS_PREFIX": f"{namespace}auth:"}
    materializer = ServiceProcess(["materialize"], env)
    server = ServiceProcess(["serve", "--port", str(port)], serve_env)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: client.zcard(f"{namespace}ind:BTC-USD@test:tick") == 420
                   and client.zcard(f"{namespace}ind:ETH-USD@test:tick") == 121
                   and client.zcard(f"{namespace}ind:DOGE-USD@test:tick") == 300
                   and client.hlen(f"{namespace}daily:ETH-USD@test") == 1, timeout_s=120,
                   message=f"views; materializer log:\n{materializer.output[-1500:]}")

        def up() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=1, headers=headers).json().get("live_relay") is True
            except (httpx.HTTPError, ValueError):
                return False

        wait_until(up, timeout_s=120, message=f"serve; log:\n{server.output[-1500:]}")
        yield Dashboard(base, settings, client, token, stream)
    finally:
        server.terminate()
        materializer.terminate()
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        delete_topics(stack.kafka_bootstrap, namespace)


@pytest.fixture
def page() -> Iterator[tuple[Page, list[str], list[str]]]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        tab = context.new_page()
        errors: list[str] = []
        dialogs: list[str] = []
        tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        try:
            yield tab, errors, dialogs
        finally:
            browser.close()


def sign_in(tab: Page, token: str, errors: list[str]) -> None:
    """The sign-in panel, a wrong key refused, then the real one; the session cookie is locked down."""
    expect(tab.locator("#signin")).to_be_visible(timeout=60_000)
    assert errors == [], errors  # asking whether to sign in (GET /session) is no error
    tab.fill("#signin-key", token[:-4] + "AAAA")
    tab.click("#signin-button")
    expect(tab.locator("#signin-error")).to_contain_text("refused")
    # The browser logs the refused POST /session (401) as a console error: that one is expected.
    wait_until(lambda: len(errors) == 1, timeout_s=60, message="the refused sign-in's console line")
    assert "401" in errors.pop(), errors
    tab.fill("#signin-key", token)
    tab.click("#signin-button")
    expect(tab.locator("#signin")).to_be_hidden(timeout=60_000)
    cookies = {cookie["name"]: cookie for cookie in tab.context.cookies()}
    session = cookies["ss_session"]
    assert session["httpOnly"] is True and session["secure"] is True and session["sameSite"] == "Strict"
    assert token not in session["value"]
    assert tab.evaluate("document.cookie") == ""  # HttpOnly: not visible to the page's scripts
    assert tab.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)") == "{}{}"


def test_dashboard_shows_views_updates_live_and_renders_system_values_as_text(dashboard, page):
    tab, errors, dialogs = page
    ARTIFACTS.mkdir(exist_ok=True)
    views = httpx.get(f"{dashboard.base}/instruments/test/BTC-USD/latest", headers=dashboard.headers).json()
    assert httpx.get(f"{dashboard.base}/symbols/BTC-USD/latest", headers=dashboard.headers).status_code == 409  # two venues
    tab.goto(dashboard.base + "/")
    if dashboard.token:
        sign_in(tab, dashboard.token, errors)
    expect(tab.locator("body")).to_have_attribute("data-loaded", "BTC-USD/tick", timeout=60_000)

    # Latest price and indicators of BTC-USD (the default symbol).
    expect(tab.locator("#price")).to_have_text(f"{views['tick']['price']:,.2f}")
    expect(tab.locator("#indicators")).to_contain_text("rsi_14")
    expect(tab.locator("#indicators")).to_contain_text("bb_upper")
    assert tab.locator("#chart canvas").count() > 0
    expect(tab.locator("#rec-side")).to_have_text(httpx.get(
        f"{dashboard.base}/instruments/test/BTC-USD/recommendation", headers=dashboard.headers).json()["side"])
    assert tab.locator("#signals li").count() > 0
    expect(tab.locator("#daily tr")).to_have_count(1)
    expect(tab.locator("#connection")).to_have_text("live")

    # A signal produced while the page is open appears without reload, with a new price.
    registry = dashboard.settings.topics()
    moment = datetime.now(UTC)
    tick = Tick(symbol="BTC-USD", venue="test", price=70123.45, volume=0.5, ts_event=moment, ts_init=moment, source="e2e",
                source_id="live-1")
    lineage = Lineage(topic=registry.ticks.name, partition=0, offset=10_000)
    snapshot = IndicatorSnapshot(symbol="BTC-USD", venue="test", timeframe="tick", price=tick.price,
                                 values={**views["indicators"]["tick"]["values"], "rsi_14": 31.5},
                                 ts_event=moment, ts_init=moment, lineage=lineage)
    signal = Signal(signal_id=make_signal_id("BTC-USD", "test", "tick", "rsi_reversal", "BUY", moment, 0, 10_000),
                    symbol="BTC-USD", venue="test", timeframe="tick", rule="rsi_reversal", side="BUY", price=tick.price,
                    strategy="rsi_reversal", strategy_version=None, condition=None,
                    indicators={"rsi_14": 31.5}, ts_event=moment, ts_init=moment, lineage=lineage)
    produce(dashboard.settings.bootstrap_servers, registry.ticks.name, [(b"BTC-USD@test", encode(tick))])
    produce(dashboard.settings.bootstrap_servers, registry.indicators.name, [(b"BTC-USD@test", encode(snapshot))])
    produce(dashboard.settings.bootstrap_servers, registry.signals.name, [(b"BTC-USD@test", encode(signal))])
    expect(tab.locator(f'#signals li[data-id="{signal.signal_id}"]')).to_be_visible(timeout=60_000)
    expect(tab.locator("#signals li").first).to_contain_text("rsi_reversal")
    expect(tab.locator("#price")).to_have_text("70,123.45")
    expect(tab.locator("#rec-side")).to_have_text("BUY")
    expect(tab.locator("#rec-rule")).to_have_text("rsi_reversal")
    expect(tab.locator("#indicators")).to_contain_text("31.50")

    # A browser notification from the notifier, with HTML in it: a toast showing the text.
    body = {"signal_id": signal.signal_id, "title": f"BUY BTC-USD {XSS}", "text": f"rsi_reversal {XSS}",
            "url": "javascript:alert(2)", "signal": signal.model_dump(mode="json")}
    dashboard.redis.publish(f"{dashboard.settings.redis_key_prefix}live:notifications", json.dumps(body))
    toast = tab.locator("#toasts .toast").first
    expect(toast).to_contain_text(f"BUY BTC-USD {XSS}")
    expect(toast).to_contain_text(f"rsi_reversal {XSS}")
    assert tab.locator("#toasts img").count() == 0
    assert tab.locator("#toasts a").count() == 0  # a javascript: URL never becomes a link

    tab.screenshot(path=str(ARTIFACTS / "dashboard-e2e.png"), full_page=True)
    if os.environ.get("STOCKSTREAM_DOCS_SCREENSHOT") == "1":
        for button in tab.locator("#toasts .toast-close").all():
            button.click()
        tab.screenshot(path=str(ROOT / "docs" / "dashboard.png"), full_page=True)

    # Another timeframe: candles for 1m.
    tab.select_option("#timeframe", "1m")
    expect(tab.locator("body")).to_have_attribute("data-loaded", "BTC-USD/1m", timeout=60_000)
    expect(tab.locator("#ind-timeframe")).to_have_text("(1m)")
    tab.screenshot(path=str(ARTIFACTS / "dashboard-e2e-1m.png"), full_page=True)

    # The other venue of BTC-USD: its own series.
    other = httpx.get(f"{dashboard.base}/instruments/xchange/BTC-USD/latest", headers=dashboard.headers).json()
    tab.select_option("#venue", "xchange")
    expect(tab.locator("body")).to_have_attribute("data-instrument", "BTC-USD@xchange", timeout=60_000)
    expect(tab.locator("#price")).to_have_text(f"{other['tick']['price']:,.2f}")

    # HTML in an indicator name (ETH-USD) is shown as text.
    tab.select_option("#symbol", "ETH-USD")
    tab.select_option("#timeframe", "tick")
    expect(tab.locator("body")).to_have_attribute("data-loaded", "ETH-USD/tick", timeout=60_000)
    expect(tab.locator("#indicators")).to_contain_text(XSS)
    assert tab.locator("#indicators img").count() == 0

    assert errors == [], errors
    assert dialogs == [], dialogs


@pytest.mark.parametrize("dashboard", ["open"], indirect=True)
def test_scrolling_left_loads_the_history_before_the_first_page(dashboard, page):
    """Issue 20: pages of 100 points (?history=100); dragging the chart to its left edge asks for the page
    before (the API's next_cursor) and draws it in front, once per scroll, nothing before the user scrolls."""
    tab, errors, _ = page
    asked: list[str] = []
    tab.on("request", lambda request: asked.append(request.url) if "cursor=" in request.url else None)
    tab.goto(dashboard.base + "/?history=100")
    body = tab.locator("body")
    expect(body).to_have_attribute("data-loaded", "BTC-USD/tick", timeout=60_000)
    expect(body).to_have_attribute("data-instrument", "BTC-USD@test")
    expect(body).to_have_attribute("data-history-points", "100")
    # Markers of the loaded 100 points only; the older signals are not piled at the left edge.
    expect(body).to_have_attribute("data-markers", str(dashboard.markers_expected("BTC-USD", 100)))
    assert asked == []  # nothing older until the user scrolls
    box = tab.locator("#chart").bounding_box()
    assert box is not None
    for attempt in range(5):  # drag the price pane to the right: older bars come into view at the left edge
        tab.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 80)
        tab.mouse.down()
        tab.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + 80, steps=12)
        tab.mouse.up()
        try:  # a page is asked for once the drag reaches the left edge; wait for it before dragging again
            expect(body).not_to_have_attribute("data-older-pages", "0", timeout=15_000)
            break
        except AssertionError:
            assert attempt < 4, "no older page after five drags to the left edge"
    expect(body).to_have_attribute("data-older-pages", "1")
    expect(body).to_have_attribute("data-history-points", "200")
    # The older page brings the markers of its own range.
    expect(body).to_have_attribute("data-markers", str(dashboard.markers_expected("BTC-USD", 200)))
    assert len(asked) == 1 and "/instruments/test/BTC-USD/indicators?" in asked[0] and "limit=100" in asked[0]
    assert errors == [], errors


def shown_at(text: str, value: float, decimals: int) -> bool:
    """``text`` is ``value`` written with exactly ``decimals`` decimals (any minus sign, no grouping below 1000)."""
    plain = text.replace("\u2212", "-").replace(",", "")
    whole, _, fraction = plain.partition(".")
    return len(fraction) == decimals and abs(float(plain) - value) <= 0.5 * 10 ** -decimals + 1e-12


@pytest.mark.parametrize("dashboard", ["open"], indirect=True)
def test_a_sub_cent_instrument_is_shown_at_its_precision_with_markers_of_the_loaded_range(dashboard, page):
    """Issue 15: DOGE-USD around 0.121. The price, the price axis label, the moving averages, the signal
    prices and the daily summary have 5 decimals (never 0.12), MACD 7 (never -0.00), RSI 2; with 100 points
    of history only the signals of those points are markers (the older ones load with the older page)."""
    tab, errors, _ = page
    asked: list[str] = []
    tab.on("request", lambda request: asked.append(request.url) if "/signals?" in request.url else None)
    tab.goto(dashboard.base + "/?history=100#DOGE-USD|test|tick")
    body = tab.locator("body")
    expect(body).to_have_attribute("data-loaded", "DOGE-USD/tick", timeout=120_000)
    latest = httpx.get(f"{dashboard.base}/instruments/test/DOGE-USD/latest").json()
    values = latest["indicators"]["tick"]["values"]
    last = dashboard.snapshots("DOGE-USD")[-1]
    assert last.price == latest["tick"]["price"] and 0.1 < last.price < 0.2

    assert shown_at(tab.locator("#price").text_content() or "", last.price, 5)
    # The axes: what the chart's own formatters write for the last price and the last MACD value.
    expect(body).to_have_attribute("data-price-decimals", "5")
    assert shown_at(body.get_attribute("data-price-label") or "", last.price, 5), body.get_attribute("data-price-label")
    macd_label = body.get_attribute("data-macd-label") or ""
    assert shown_at(macd_label, last.values["macd"], 7) and abs(last.values["macd"]) > 1e-5, macd_label
    # The indicator table: price-unit values with 5 decimals, MACD with 7, RSI with 2.
    cells = dict(tab.eval_on_selector_all("#indicators tr", "rows => rows.map(r => [r.cells[0].textContent,"
                                                             " r.cells[1].textContent])"))
    for name, decimals in (("sma_20", 5), ("ema_12", 5), ("bb_upper", 5), ("macd", 7), ("macd_signal", 7),
                           ("macd_hist", 7), ("rsi_14", 2)):
        assert shown_at(cells[name], values[name], decimals), (name, cells[name], values[name])
    prices = tab.eval_on_selector_all("#signals li", "items => items.map(i => i.children[2].textContent)")
    assert prices and all(shown_at(text, float(text), 5) and text.startswith("0.") for text in prices), prices
    daily_open = tab.eval_on_selector("#daily tr", "row => row.cells[1].textContent")
    assert shown_at(daily_open, dashboard.snapshots("DOGE-USD")[0].price, 5), daily_open

    # Markers: the signals of the 100 loaded points, asked for by time range; fewer than the instrument has.
    every = sum(1 for s in dashboard.stream.signals if s.symbol == "DOGE-USD" and s.timeframe == "tick")
    expected = dashboard.markers_expected("DOGE-USD", 100)
    assert 0 < expected < every
    expect(body).to_have_attribute("data-markers", str(expected))
    assert any("from=" in url for url in asked), asked
    assert errors == [], errors
