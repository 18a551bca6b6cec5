"""The query API as a client sees it: ``stockstream serve`` (a real process) over real Redis views.

The namespace holds realistic views (two symbols, hundreds of ticks, candles, signals, daily
summaries) plus schema-valid extremes (a symbol of one character, a signal dated 9999-12-31,
prices of 5e-324 and 1.8e308), so responses carry real and extreme data.

1. schemathesis, every phase (examples, coverage, fuzzing, and stateful over OpenAPI links we
   add to a copy of the served schema: ``/symbols`` → every symbol endpoint, a signal → its
   rule/side filter and the recommendation of its timeframe, a day → that one day, a candle
   series → the indicators of its timeframe) and every check: no 5xx, status codes, content
   types, headers and bodies as the schema says. The HAR report proves every endpoint answered
   with data (200 on a known symbol), not only 404/422.
2. Raw request targets no HTTP client would send (percent-encoded invalid UTF-8, control
   characters, dot segments, huge and repeated parameters): never a 5xx, always the security
   headers, JSON errors; the server logs no traceback.

Both run twice: with authentication off (loopback) and with API keys on, as a client holding a
``read`` key (schemathesis's ``ignored_auth`` check then also proves every operation that the
schema says needs the key refuses a request without it).

(tests/integration/views has a short in-process schemathesis pass; this one is the long,
stateful, over-the-wire one.)
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from hypothesis import event, example, given
from hypothesis import strategies as st

from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputRecord, InputTopics
from processors.materialize.store import ViewStore
from schemas.events import Candle, Lineage, Signal, Tick, encode
from schemas.topics import TopicRegistry
from stockstream.api.keys import KeyStore
from tests.fuzz.strategies import ODD_TEXT, fuzz
from tests.integration.views.streams import T0, make_stream
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

KNOWN = ["BTC-USD", "ETH-USD", "0", "A.B_C-D"]
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")


def _extremes() -> list[InputRecord]:
    """Schema-valid events at the edges, as the materializer would store them."""
    registry = TopicRegistry(prefix="x.")
    end = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    lineage = Lineage(topic="x.ticks", partition=0, offset=2**62)
    tick = Tick(symbol="0", venue="0", price=5e-324, volume=1.7976931348623157e308, ts_event=end, ts_init=end, source="s" * 64,
                source_id="<script>alert(1)</script>")
    signal = Signal(signal_id="f" * 32, symbol="A.B_C-D", venue="z" * 32, timeframe="1m", rule="a" * 64, side="SELL",
                    strategy="a" * 64, strategy_version="f" * 16, condition="\u202e" * 2_000,
                    price=1.7976931348623157e308, indicators={"\u202e": None, "x" * 200: -1e308}, ts_event=end,
                    ts_init=end, lineage=lineage)
    candle = Candle(symbol="A.B_C-D", venue="z" * 32, timeframe="1m", ts_open=datetime(1, 1, 1, tzinfo=UTC),
                    ts_close=datetime(1, 1, 1, 0, 1, tzinfo=UTC), open=5e-324, high=1.7976931348623157e308, low=5e-324,
                    close=1.0, volume=0.0, trade_count=2**62, final=True, ts_event=end, ts_init=end, lineage=lineage)
    return [InputRecord(registry.ticks.name, 0, 1, b"0@0", encode(tick)),
            InputRecord(registry.signals.name, 0, 1, b"A.B_C-D@" + b"z" * 32, encode(signal)),
            InputRecord(registry.candles("1m").name, 0, 1, b"A.B_C-D@" + b"z" * 32, encode(candle))]


@dataclass(frozen=True)
class Served:
    url: str
    process: ServiceProcess
    headers: dict[str, str]


@pytest.fixture(scope="module", params=["open", "key"])
def served(stack, request) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    prefix = f"fuzzapi{uuid.uuid4().hex[:8]}."
    client = redis.Redis.from_url(stack.redis_url)
    stream = make_stream(count=300)
    stream.extend(make_stream("ETH-USD", count=120, price=3000.0, seed=8, start=T0 + timedelta(days=1)))
    from tests.integration.views.test_views_store import log_of

    keys = ViewKeys(prefix)
    planner = BatchPlanner(keys, InputTopics.from_registry(TopicRegistry(prefix="x.")), Caps(), lambda: T0)
    store = ViewStore(client, keys, publish=False)
    store.apply(planner.plan(log_of(stream)))
    store.apply(planner.plan(_extremes()))
    port = free_port()
    env = {"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "REDIS_URL": stack.redis_url, "REDIS_KEY_PREFIX": prefix,
           "LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1", "METRICS_PORT": "0",
           # the fuzzers send as fast as they can; the limits have their own tests (test_views_api_auth)
           "API_RATE_PER_IP": "0", "API_RATE_PER_KEY": "0"}
    headers: dict[str, str] = {}
    if request.param == "key":
        _record, token = KeyStore(client, f"{prefix}auth:").create("fuzz", ["read"])
        env |= {"API_AUTH": "on", "API_KEYS_PREFIX": f"{prefix}auth:"}
        headers = {"Authorization": f"Bearer {token}"}
    process = ServiceProcess(["serve", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _status(port, b"/symbols", headers) == 200, timeout_s=120,
                   message="stockstream serve to answer")
        yield Served(url, process, headers)
    finally:
        process.terminate()
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        client.close()


def _status(port: int, target: bytes, headers: dict[str, str]) -> int | None:
    try:
        return _raw_get(port, target, headers)[0]
    except OSError:
        return None


def _raw_get(port: int, target: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One GET with ``target`` sent byte for byte (no client-side validation or re-encoding)."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra
                           + b"Connection: close\r\n\r\n")
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def _linked_schema(url: str, folder: Path, headers: dict[str, str]) -> Path:
    """The served schema plus OpenAPI links, so schemathesis can chain calls (stateful phase)."""
    import urllib.request

    schema = json.loads(urllib.request.urlopen(urllib.request.Request(  # noqa: S310
        f"{url}/openapi.json", headers=headers), timeout=30).read())
    paths = schema["paths"]

    def op(path: str) -> dict[str, object]:
        return paths[path]["get"]  # type: ignore[no-any-return]

    def link(path: str, **parameters: str) -> dict[str, object]:
        return {"operationId": op(path)["operationId"], "parameters": parameters}

    symbol_paths = [path for path in paths if path.startswith("/symbols/{symbol}")]
    op("/symbols")["responses"]["200"]["links"] = {  # type: ignore[index]
        f"{path.rsplit('/', 1)[1]}{index}": link(path, **{"path.symbol": f"$response.body#/symbols/{index}"})
        for path in symbol_paths for index in range(len(KNOWN))}
    op("/symbols/{symbol}/signals")["responses"]["200"]["links"] = {  # type: ignore[index]
        "same_rule_and_side": link("/symbols/{symbol}/signals", **{
            "path.symbol": "$response.body#/symbol", "query.rule": "$response.body#/signals/0/rule",
            "query.side": "$response.body#/signals/0/side"}),
        "recommendation_of_its_timeframe": link("/symbols/{symbol}/recommendation", **{
            "path.symbol": "$response.body#/symbol", "query.timeframe": "$response.body#/signals/0/timeframe"})}
    op("/symbols/{symbol}/daily")["responses"]["200"]["links"] = {  # type: ignore[index]
        "that_day": link("/symbols/{symbol}/daily", **{
            "path.symbol": "$response.body#/symbol", "query.from": "$response.body#/days/0/date",
            "query.to": "$response.body#/days/0/date"})}
    op("/symbols/{symbol}/candles")["responses"]["200"]["links"] = {  # type: ignore[index]
        "indicators_of_the_timeframe": link("/symbols/{symbol}/indicators", **{
            "path.symbol": "$response.body#/symbol", "query.timeframe": "$response.body#/timeframe"})}
    path = folder / "openapi-linked.json"
    path.write_text(json.dumps(schema))
    return path


def test_schemathesis_every_phase_and_check_with_links(served: Served, tmp_path: Path) -> None:
    schema = _linked_schema(served.url, tmp_path, served.headers)
    har = tmp_path / "run.har"
    auth = [argument for name, value in served.headers.items() for argument in ("-H", f"{name}: {value}")]
    run = subprocess.run(  # noqa: S603
        [SCHEMATHESIS, "run", str(schema), "--url", served.url, "--checks", "all", *auth,
         "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "100", "--seed", "20261127",
         "--generation-database", "none", "--workers", "1", "--no-color", "--request-timeout", "30",
         "--report", "har", "--report-har-path", str(har)],
        capture_output=True, text=True, timeout=540, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Stateful" in run.stdout and re.search(r"API Links:\s+(\d+) covered", run.stdout), run.stdout[-3000:]
    covered = int(re.search(r"API Links:\s+(\d+) covered", run.stdout).group(1))  # type: ignore[union-attr]
    assert covered >= 20, f"only {covered} links exercised"

    answered: Counter[tuple[str, int]] = Counter()
    for entry in json.loads(har.read_text())["log"]["entries"]:
        path = entry["request"]["url"].removeprefix(served.url).split("?")[0]
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "symbols":
            parts[2] = "{known}" if parts[2] in KNOWN else "{other}"
        answered[("/".join(parts), entry["response"]["status"])] += 1
    assert not [key for key in answered if key[1] >= 500], answered
    for endpoint in ("latest", "recommendation", "candles", "indicators", "signals", "daily"):
        assert answered[(f"/symbols/{{known}}/{endpoint}", 200)] >= 10, (endpoint, answered)
    assert "Traceback" not in served.process.output


def _targets() -> st.SearchStrategy[bytes]:
    endpoint = st.sampled_from(["latest", "recommendation", "candles", "indicators", "signals", "daily", "", "x"])
    raw_piece = st.one_of(
        st.sampled_from(KNOWN),
        ODD_TEXT.map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe="")),
        st.binary(max_size=12).map(lambda data: "".join(f"%{byte:02X}" for byte in data)),
        st.sampled_from(["..", ".", "%2e%2e", "%2F", "%00", "%", "%zz", "BTC-USD%0a", "A" * 5000]),
    )
    names = st.sampled_from(["timeframe", "limit", "rule", "side", "from", "to", "symbol", "", "x" * 300])
    value = st.one_of(raw_piece, st.sampled_from(["tick", "1m", "0", "-1", "1001", "9" * 40, "2024-02-30",
                                                  "0001-01-01", "99999-01-01", "BUY", "ema_cross", ""]))
    query = st.lists(st.tuples(names, value), max_size=6).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))
    target = st.builds(lambda symbol, name, q: f"/symbols/{symbol}/{name}" + (f"?{q}" if q else ""),
                       raw_piece, endpoint, query)
    other = st.builds(lambda path, q: path + (f"?{q}" if q else ""),
                      st.sampled_from(["/symbols", "/health", "/openapi.json", "/docs", "/", "/static/../../etc/passwd",
                                       "/static/%2e%2e/%2e%2e/pyproject.toml", "/metrics", "//symbols"]), query)
    unencoded = st.binary(max_size=40).map(lambda data: b"/symbols/" + data + b"/latest")  # for the HTTP parser
    return st.one_of(target, target, other).map(lambda text: text.encode("utf-8", "surrogatepass")) | unencoded


@given(target=_targets())
@example(target=b"/symbols/%ff%fe/latest")
@example(target=b"/symbols/BTC-USD/daily?from=0001-01-01&to=9999-12-31")
@example(target=b"/symbols/BTC-USD/signals?limit=1000&limit=-1&rule=ema_cross&rule=%00")
@example(target=b"/static/%2e%2e/%2e%2e/pyproject.toml")
@fuzz(400)
def test_raw_request_targets(served: Served, target: bytes) -> None:
    status, headers, body = _raw_get(int(served.url.rsplit(":", 1)[1]), target, served.headers)
    event(f"status {status}")
    assert status < 500, (target, status, body[:300])
    if status == 400 and body.startswith(b"Invalid HTTP request"):
        return  # refused by uvicorn's HTTP parser before it reaches the app: nothing more to check
    for name in SECURITY_HEADERS:
        assert name in headers, (target, status, headers)
    if headers.get("content-type", "").startswith("application/json") and "chunked" not in headers.get(
            "transfer-encoding", ""):
        json.loads(body)
    if status == 200 and target.startswith(b"/static"):
        assert b"[project]" not in body, "a static path escaped its folder"
