"""The dashboard's run selector (issue 16) and scorecard panel (issue 15) in a real browser (Chromium, Playwright).

Real services: a live ``stockstream materialize``, a run's materializer (``STOCKSTREAM_RUN=alt``,
reading the run's own topics ``runs.alt.*``), ``stockstream serve``, and two records on the
``runs`` topic (``alt`` with views, ``bare`` without). Checks: the page opens on live; the run
selector lists live and ``alt`` only (from ``GET /runs``); choosing ``alt`` shows that run's
signals and indicators (every view request carries ``?run=alt``), its own instruments, no live
push; the choice is kept in the URL; going back to live shows live's views again and reconnects
``/live``; no console error anywhere (CSP violations included). The scorecard panel shows the
instrument's scorecards (the materialized ``signals.outcomes`` through ``GET /scorecards``) of the
strategy chosen in the strategy selector — which also filters the signals and asks for that
strategy's recommendation — and of the chosen run.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from playwright.sync_api import expect

from processors.core.scorecard import Scorecards
from processors.materialize.settings import MaterializeSettings
from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.runs import RunLog
from schemas.events import SignalOutcome, make_outcome_id
from schemas.runs import Namespace, Run, StrategyRef
from tests.e2e.dashboard.test_dashboard import CHROMIUM, page  # noqa: F401 - the page fixture
from tests.integration.views.streams import Stream, make_stream, produce_stream, records
from tests.support.kafka_tools import delete_topics, produce, wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
XSS = "<img src=x onerror=alert(1)>"


def _run(run_id: str, redis_prefix: str | None, topic_prefix: str, created: datetime) -> Run:
    return Run(run_id=run_id, kind="replay", state="done", description=f"the {run_id} run {XSS}",
               strategy=StrategyRef(version="0123456789abcdef"), code_version="test",
               namespace=Namespace(topic_prefix=topic_prefix, redis_prefix=redis_prefix),
               expires_at=created + timedelta(days=7), ts_event=created, ts_init=created)


HORIZONS = (("30s", timedelta(seconds=30)), ("1m", timedelta(minutes=1)))


def outcomes_of(stream: Stream) -> list[SignalOutcome]:
    """The scorecard definition (docs/core.md) on a synthetic stream: the first tick at or after signal + h."""
    made = []
    for signal in stream.signals:
        ticks = [t for t in stream.ticks if (t.symbol, t.venue) == (signal.symbol, signal.venue)]
        for horizon, length in HORIZONS:
            later = next((t for t in ticks if t.ts_event >= signal.ts_event + length), None)
            if later is None:
                continue
            gross = (1 if signal.side == "BUY" else -1) * (later.price / signal.price - 1)
            made.append(SignalOutcome(
                outcome_id=make_outcome_id(signal.signal_id, horizon), signal_id=signal.signal_id,
                symbol=signal.symbol, venue=signal.venue, strategy=signal.strategy,
                strategy_version=signal.strategy_version, timeframe=signal.timeframe, side=signal.side,
                horizon=horizon, signal_price=signal.price, signal_ts=signal.ts_event, price=later.price,
                return_gross=gross, return_net=gross, fee=0.0, ts_event=later.ts_event, ts_init=later.ts_init,
                lineage=signal.lineage))
    return made


class Views:
    def __init__(self, base: str, live: Stream, run: Stream) -> None:
        self.base, self.live, self.run = base, live, run
        self.live_outcomes, self.run_outcomes = outcomes_of(live), outcomes_of(run)


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
    made = Views("", live, run)
    produce(stack.kafka_bootstrap, live_settings.topics().signal_outcomes.name, records(made.live_outcomes))
    produce(stack.kafka_bootstrap, run_registry.signal_outcomes.name, records(made.run_outcomes))
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
                   and client.zcard(f"{namespace}run:alt:ind:SOL-USD@test:tick") == 90
                   and client.zcard(f"{namespace}outcomes:BTC-USD@test") == len(made.live_outcomes)
                   and client.zcard(f"{namespace}run:alt:outcomes:BTC-USD@test") == sum(
                       1 for o in made.run_outcomes if o.symbol == "BTC-USD"), timeout_s=90,
                   message="live and run views; logs:\n" + "\n".join(m.output[-1500:] for m in materializers))

        def up() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=1).json().get("live_relay") is True
            except (httpx.HTTPError, ValueError):
                return False

        wait_until(up, timeout_s=120, message=f"serve; log:\n{server.output[-1500:]}")
        made.base = base
        yield made
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
    assert body["runs"][2]["description"] == f"the alt run {XSS}"
    assert "strategy_file" not in body["runs"][2]
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
    # A run's description (free text) is its option's tooltip, as text.
    assert tab.get_attribute('#run option[value="alt"]', "title") == f"the alt run {XSS}"
    assert tab.locator("img").count() == 0
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


def cards_text(outcomes: list[SignalOutcome], strategy: str | None = None) -> list[list[str]]:
    """The panel's rows as the page should show them (the same formatting as app.js)."""
    def percent(value: float, digits: int) -> str:
        return ("+" if value > 0 else "") + f"{value * 100:.{digits}f} %"

    rows = []
    for card in Scorecards().extend(o for o in outcomes if strategy is None or o.strategy == strategy).cards():
        factor = "no loss" if card.profit_factor is None else f"{card.profit_factor:.2f}"
        rows.append([card.key.strategy, card.key.timeframe, card.key.horizon, str(card.outcomes),
                     f"{card.hit_rate * 100:.1f} %", percent(card.mean_return, 3), percent(card.median_return, 3),
                     factor])
    return rows


def panel(tab) -> list[list[str]]:
    return tab.eval_on_selector_all("#scorecards tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def test_scorecard_panel_follows_the_strategy_and_the_run(views, page):  # noqa: F811 - the fixture
    tab, errors, dialogs = page
    asked: list[str] = []
    tab.on("request", lambda request: asked.append(request.url))
    live_btc = [o for o in views.live_outcomes if o.symbol == "BTC-USD"]
    run_btc = [o for o in views.run_outcomes if o.symbol == "BTC-USD"]
    strategies = sorted({o.strategy for o in live_btc})
    assert len(strategies) == 2 and len(live_btc) > 10, "the stream gives both strategies outcomes"
    tab.goto(views.base + "/")
    body = tab.locator("body")
    expect(body).to_have_attribute("data-loaded", "BTC-USD/tick", timeout=60_000)
    # Every strategy: one row per (strategy, timeframe, horizon) of BTC-USD@test, as the core computes them.
    expect(tab.locator("#scorecards tr")).to_have_count(len(cards_text(live_btc)))
    assert panel(tab) == cards_text(live_btc)
    expect(tab.locator("#scorecards-scope")).to_have_text("BTC-USD@test")
    assert tab.eval_on_selector_all("#strategy option", "options => options.map(o => o.value)") == ["", *strategies]

    # One strategy: its scorecards, its signals only, and the recommendation of that strategy.
    chosen = strategies[0]
    tab.select_option("#strategy", chosen)
    expect(body).to_have_attribute("data-strategy", chosen, timeout=60_000)
    expect(tab.locator("#scorecards tr")).to_have_count(len(cards_text(live_btc, chosen)))
    assert panel(tab) == cards_text(live_btc, chosen)
    listed = tab.eval_on_selector_all("#signals li", "items => items.map(i => i.children[1].textContent)")
    assert listed and set(listed) == {chosen}
    assert any(f"/recommendation?strategy={chosen}" in url for url in asked), asked
    expect(tab.locator("#rec-rule")).to_have_text(chosen)

    # The run, with the strategy kept: the run's scorecards of that strategy; then every strategy of the run.
    tab.select_option("#run", "alt")
    expect(body).to_have_attribute("data-run", "alt", timeout=60_000)
    expect(tab.locator("#scorecards-scope")).to_have_text("BTC-USD@test · run alt")
    expect(tab.locator("#strategy")).to_have_value(chosen)
    assert panel(tab) == cards_text(run_btc, chosen)
    assert any("/scorecards?" in url and "run=alt" in url for url in asked), asked
    assert tab.url.endswith("%7Calt%7C" + chosen)
    tab.select_option("#strategy", "")
    expect(body).to_have_attribute("data-strategy", "", timeout=60_000)
    expect(tab.locator("#scorecards tr")).to_have_count(len(cards_text(run_btc)))
    assert panel(tab) == cards_text(run_btc)
    assert cards_text(run_btc) != cards_text(live_btc)
    assert errors == [], errors
    assert dialogs == [], dialogs
