"""The query API on the real Redis: contracts, strict validation, 404/422/503, security headers, metrics, schema.

Every test runs twice: with authentication off (loopback, the default of ``make run``) and with
API keys on, as a client holding a ``read`` key (tests/integration/views/test_views_api_auth.py
covers the refusals).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from prometheus_client import REGISTRY, generate_latest

from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputTopics
from processors.materialize.store import ViewStore
from stockstream.api.app import create_app
from stockstream.api.keys import KeyStore
from stockstream.api.settings import ApiSettings
from tests.integration.views.streams import T0, make_stream
from tests.integration.views.test_views_store import log_of

pytestmark = pytest.mark.integration

STREAM = make_stream(count=200)
STREAM.extend(make_stream("ETH-USD", count=50, price=3000.0, seed=8, start=T0 + timedelta(days=1)))
BTC_SIGNALS = sorted((s for s in STREAM.signals if s.symbol == "BTC-USD"), key=lambda s: s.ts_event, reverse=True)


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def populated(redis_client, views_prefix) -> str:
    """The views of STREAM under the test's prefix, written by the real store (topic names as in the log)."""
    from schemas.topics import TopicRegistry

    keys = ViewKeys(views_prefix)
    planner = BatchPlanner(keys, InputTopics.from_registry(TopicRegistry(prefix="x.")), Caps(), lambda: T0)
    ViewStore(redis_client, keys, publish=False).apply(planner.plan(log_of(STREAM)))
    return views_prefix


@pytest.fixture
def clock() -> Clock:
    return Clock(BTC_SIGNALS[0].ts_event + timedelta(minutes=1))


@pytest.fixture(params=["open", "key"])
def auth(request, redis_client, views_prefix) -> tuple[dict[str, object], dict[str, str]]:
    """(settings overrides, request headers): no authentication, or keys on and a ``read`` key held."""
    if request.param == "open":
        return {}, {}
    prefix = f"{views_prefix}auth:"
    _record, token = KeyStore(redis_client, prefix).create("views-api-test", ["read"])
    return {"api_auth": "on", "api_keys_prefix": prefix}, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(stack, populated, clock, auth) -> Iterator[TestClient]:
    overrides, headers = auth
    settings = ApiSettings(bootstrap_servers=stack.kafka_bootstrap, redis_url=stack.redis_url,
                           redis_key_prefix=populated, **overrides)
    with TestClient(create_app(settings, now=clock), headers=headers) as client:
        yield client


def test_symbols_and_latest(api):
    assert api.get("/symbols").json() == {"symbols": ["BTC-USD", "ETH-USD"], "timeframes": ["tick", "1m"]}
    latest = api.get("/symbols/BTC-USD/latest").json()
    assert latest["tick"]["source_id"] == [t for t in STREAM.ticks if t.symbol == "BTC-USD"][-1].source_id
    assert set(latest["indicators"]) == {"tick", "1m"}
    assert latest["indicators"]["tick"]["values"]["rsi_14"] is not None


def test_recommendation_is_active_then_decays_to_hold(api, clock):
    newest = json.loads(json.dumps(BTC_SIGNALS[0].model_dump(mode="json")))
    active = api.get("/symbols/BTC-USD/recommendation").json()
    assert (active["side"], active["state"]) == (newest["side"], "active")
    assert active["set_by"]["signal_id"] == newest["signal_id"]
    assert active["set_by"]["rule"] == newest["rule"] and active["set_by"]["price"] == newest["price"]
    clock.moment = BTC_SIGNALS[0].ts_event + timedelta(minutes=15)
    decayed = api.get("/symbols/BTC-USD/recommendation").json()
    assert (decayed["side"], decayed["state"]) == ("HOLD", "decayed")
    assert decayed["set_by"]["signal_id"] == newest["signal_id"]
    per_timeframe = api.get("/symbols/BTC-USD/recommendation", params={"timeframe": "1m"}).json()
    one_minute = [s for s in BTC_SIGNALS if s.timeframe == "1m"]
    assert per_timeframe["state"] == ("none" if not one_minute else "decayed")


def test_recommendation_per_strategy_and_the_default_strategy(api, stack, populated, clock, auth):
    strategies = {s.strategy for s in BTC_SIGNALS}
    assert len(strategies) >= 2
    for strategy in strategies:
        newest = next(s for s in BTC_SIGNALS if s.strategy == strategy)
        answer = api.get("/symbols/BTC-USD/recommendation", params={"strategy": strategy}).json()
        assert answer["strategy"] == strategy and answer["set_by"]["signal_id"] == newest.signal_id
        for timeframe in ("tick", "1m"):
            of_both = [s for s in BTC_SIGNALS if s.strategy == strategy and s.timeframe == timeframe]
            answer = api.get("/symbols/BTC-USD/recommendation",
                             params={"strategy": strategy, "timeframe": timeframe}).json()
            assert (answer["set_by"] or {}).get("signal_id") == (of_both[0].signal_id if of_both else None)
    assert api.get("/symbols/BTC-USD/recommendation", params={"strategy": "no_such"}).json()["state"] == "none"
    chosen = sorted(strategies)[0]
    overrides, headers = auth
    settings = ApiSettings(bootstrap_servers=stack.kafka_bootstrap, redis_url=stack.redis_url,
                           redis_key_prefix=populated, recommendation_strategy=chosen, **overrides)
    with TestClient(create_app(settings, now=clock), headers=headers) as client:
        default = client.get("/symbols/BTC-USD/recommendation").json()
    assert default["strategy"] == chosen
    assert default["set_by"]["signal_id"] == next(s for s in BTC_SIGNALS if s.strategy == chosen).signal_id


def test_candles_indicators_signals_and_daily(api):
    candles = api.get("/symbols/BTC-USD/candles", params={"timeframe": "1m", "limit": 2}).json()["candles"]
    expected = [c for c in STREAM.candles if c.symbol == "BTC-USD"][-2:]
    assert [c["ts_open"] for c in candles] == [c.model_dump(mode="json")["ts_open"] for c in expected]

    series = api.get("/symbols/BTC-USD/indicators", params={"timeframe": "tick", "limit": 5}).json()
    times = [s["ts_event"] for s in series["history"]]
    assert len(times) == 5 and times == sorted(times)
    assert series["latest"] == series["history"][-1]
    assert api.get("/symbols/BTC-USD/indicators", params={"limit": 0}).json()["history"] == []

    signals = api.get("/symbols/BTC-USD/signals", params={"limit": 3}).json()["signals"]
    assert [s["signal_id"] for s in signals] == [s.signal_id for s in BTC_SIGNALS[:3]]
    sells = api.get("/symbols/BTC-USD/signals", params={"side": "SELL", "rule": "rsi_reversal"}).json()["signals"]
    assert sells and all(s["side"] == "SELL" and s["rule"] == "rsi_reversal" for s in sells)
    assert [s["signal_id"] for s in sells] == [s.signal_id for s in BTC_SIGNALS
                                              if s.side == "SELL" and s.rule == "rsi_reversal"]

    day = T0.date().isoformat()
    assert [d["date"] for d in api.get("/symbols/BTC-USD/daily").json()["days"]] == [day]
    assert api.get("/symbols/BTC-USD/daily", params={"from": "2026-11-28"}).json()["days"] == []
    assert api.get("/symbols/BTC-USD/daily", params={"from": day, "to": day}).json()["days"][0]["tick_count"] == 200
    assert api.get("/symbols/BTC-USD/daily", params={"from": "2026-12-01", "to": "2026-11-01"}).json()["days"] == []


@pytest.mark.parametrize(("path", "params"), [
    ("/symbols/btc-usd/latest", {}),
    ("/symbols/BTC*/latest", {}),
    ("/symbols/BTC-USD:pos/latest", {}),
    ("/symbols/" + "A" * 33 + "/latest", {}),
    ("/symbols/%20BTC/latest", {}),
    ("/symbols/BTC-USD/candles", {"timeframe": "tick"}),
    ("/symbols/BTC-USD/candles", {"timeframe": "7m"}),
    ("/symbols/BTC-USD/candles", {"limit": 0}),
    ("/symbols/BTC-USD/candles", {"limit": 1001}),
    ("/symbols/BTC-USD/indicators", {"timeframe": "1m*"}),
    ("/symbols/BTC-USD/signals", {"rule": "1rsi"}),  # "Rsi" is a valid strategy name since Signal v3
    ("/symbols/BTC-USD/recommendation", {"strategy": "a:b"}),
    ("/symbols/BTC-USD/recommendation", {"strategy": "*"}),
    ("/symbols/BTC-USD/signals", {"rule": "a:b"}),
    ("/symbols/BTC-USD/signals", {"side": "HOLD"}),
    ("/symbols/BTC-USD/daily", {"from": "0"}),
    ("/symbols/BTC-USD/daily", {"to": "2026-13-01"}),
    ("/symbols/BTC-USD/daily", {"from": "2026-11-27T00:00:00"}),
    ("/live", {"symbol": "bad*"}),
])
def test_invalid_input_is_a_clear_422(api, path, params):
    answer = api.get(path, params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][0] in ("path", "query")


def test_unknown_symbol_is_404_everywhere(api):
    for path in ("latest", "recommendation", "candles", "indicators", "signals", "daily"):
        answer = api.get(f"/symbols/DOGE-USD/{path}")
        assert answer.status_code == 404
        assert "unknown symbol 'DOGE-USD'" in answer.json()["detail"]


def test_security_headers_and_a_page_without_inline_code(api):
    page = api.get("/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in api.get("/symbols").headers
    html = page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert " style=" not in html and "<style" not in html and "onclick" not in html
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert api.get(asset).status_code == 200, asset
    script = api.get("/static/app.js").text
    assert ".innerHTML" not in script and "eval(" not in script and "insertAdjacentHTML" not in script
    docs = api.get("/docs")
    assert docs.status_code == 200 and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert api.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_metrics_use_route_templates_not_raw_paths(api):
    api.get("/symbols/BTC-USD/latest")
    api.get("/symbols/ETH-USD/latest")
    api.get("/symbols/NOPE/latest")
    text = generate_latest(REGISTRY).decode()  # served on the metrics port (METRICS_PORT), not the API
    assert 'status="404"' in text
    assert "BTC-USD" not in text and "NOPE" not in text


def test_openapi_lists_every_endpoint_with_exact_enums(api):
    schema = api.get("/openapi.json").json()
    views = ("latest", "recommendation", "candles", "indicators", "signals", "daily")
    assert set(schema["paths"]) == {
        "/symbols", "/instruments", "/runs", "/scorecards", "/health", "/ready", "/admin/keys",
        *(f"/symbols/{{symbol}}/{view}" for view in views),
        *(f"/instruments/{{venue}}/{{symbol}}/{view}" for view in views)}
    assert "409" in schema["paths"]["/symbols/{symbol}/latest"]["get"]["responses"]
    candles = schema["paths"]["/symbols/{symbol}/candles"]["get"]
    timeframe = next(p for p in candles["parameters"] if p["name"] == "timeframe")
    assert schema["components"]["schemas"][timeframe["schema"]["$ref"].rsplit("/", 1)[1]]["enum"] == ["1m"]


def test_health_reports_kafka_and_redis(api, stack):
    assert api.get("/health").json() == {"status": "ok", "kafka": True, "redis": True, "live_relay": True}
    assert api.get("/ready").json() == {"status": "ready"}
    settings = ApiSettings(bootstrap_servers="127.0.0.1:1", redis_url="redis://127.0.0.1:1/0",
                           redis_socket_timeout_s=0.5, health_timeout_s=0.5)
    with TestClient(create_app(settings)) as down:
        answer = down.get("/health")
        assert answer.status_code == 503
        assert answer.json()["redis"] is False and answer.json()["kafka"] is False
        unavailable = down.get("/symbols/BTC-USD/latest")
        assert unavailable.status_code == 503
        assert "unavailable" in unavailable.json()["detail"]


def test_schemathesis_no_server_errors_and_responses_match_the_schema(stack, populated, auth):
    """A short schemathesis pass per operation (the full run is ``schemathesis run …/openapi.json``)."""
    overrides, headers = auth
    settings_ = ApiSettings(bootstrap_servers=stack.kafka_bootstrap, redis_url=stack.redis_url,
                            redis_key_prefix=populated, rate_per_ip=0, rate_per_key=0, **overrides)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings_, now=lambda: datetime.now(UTC)),
                                            headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 19
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            case.call_and_validate(headers=headers)

        check()


@pytest.fixture
def two_venues(stack, redis_client, views_prefix) -> Iterator[TestClient]:
    """BTC-USD on two venues (kraken, coinbase) and ETH-USD on one, written by the real store."""
    from schemas.topics import TopicRegistry

    stream = make_stream(count=120, venue="kraken")
    stream.extend(make_stream(count=90, venue="coinbase", price=65_100.0, seed=9))
    stream.extend(make_stream("ETH-USD", count=30, price=3000.0, seed=8, venue="coinbase"))
    keys = ViewKeys(views_prefix)
    planner = BatchPlanner(keys, InputTopics.from_registry(TopicRegistry(prefix="x.")), Caps(), lambda: T0)
    ViewStore(redis_client, keys, publish=False).apply(planner.plan(log_of(stream)))
    settings = ApiSettings(bootstrap_servers=stack.kafka_bootstrap, redis_url=stack.redis_url,
                           redis_key_prefix=views_prefix, instrument_stale_s=60)
    now = Clock(T0 + timedelta(seconds=100))
    with TestClient(create_app(settings, now=now)) as client:
        yield client


def test_an_ambiguous_symbol_is_409_with_the_instruments_to_choose_from(two_venues):
    for view in ("latest", "recommendation", "candles", "indicators", "signals", "daily"):
        answer = two_venues.get(f"/symbols/BTC-USD/{view}")
        assert answer.status_code == 409, view
        assert answer.json()["choices"] == ["BTC-USD@coinbase", "BTC-USD@kraken"]
        assert answer.json()["symbol"] == "BTC-USD" and "/instruments/" in answer.json()["detail"]
    # A symbol with one venue still answers on its old path, the same body as its instrument path.
    assert two_venues.get("/symbols/ETH-USD/latest").json() == two_venues.get(
        "/instruments/coinbase/ETH-USD/latest").json()


def test_instrument_paths_serve_each_venues_own_series(two_venues):
    kraken = two_venues.get("/instruments/kraken/BTC-USD/indicators", params={"limit": 1000}).json()
    coinbase = two_venues.get("/instruments/coinbase/BTC-USD/indicators", params={"limit": 1000}).json()
    assert (kraken["venue"], len(kraken["history"])) == ("kraken", 120)
    assert (coinbase["venue"], len(coinbase["history"])) == ("coinbase", 90)
    assert {s["venue"] for s in kraken["history"]} == {"kraken"}
    latest = two_venues.get("/instruments/kraken/BTC-USD/latest").json()
    assert latest["tick"]["venue"] == "kraken" and latest["venue"] == "kraken"
    unknown = two_venues.get("/instruments/binance/BTC-USD/latest")
    assert unknown.status_code == 404 and "BTC-USD@binance" in unknown.json()["detail"]
    assert two_venues.get("/instruments/Binance/BTC-USD/latest").status_code == 422


def test_instruments_lists_every_venue_with_its_last_tick_and_health(two_venues):
    listing = two_venues.get("/instruments").json()
    assert listing["stale_after_seconds"] == 60
    by_name = {item["instrument"]: item for item in listing["instruments"]}
    assert list(by_name) == ["BTC-USD@coinbase", "BTC-USD@kraken", "ETH-USD@coinbase"]
    # now = T0 + 100 s, stale after 60 s: kraken ticked until T0 + 119 s, coinbase BTC until T0 + 89 s
    # (both fresh), ETH until T0 + 29 s (71 s ago: stale).
    assert by_name["BTC-USD@kraken"]["last_tick_at"] == "2026-11-27T12:01:59Z"
    assert {name: item["health"] for name, item in by_name.items()} == {
        "BTC-USD@coinbase": "fresh", "BTC-USD@kraken": "fresh", "ETH-USD@coinbase": "stale"}
