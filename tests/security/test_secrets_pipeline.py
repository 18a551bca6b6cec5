"""No secret leaves its channel: the whole pipeline with recognisable fake secrets, every output searched.

Runs, as real processes on the shared Kafka and a private ``redis-server --requirepass``:
``ingest --source alphavantage`` (local Alpha Vantage server; among its answers an error and a
malformed body that echo the key), ``process``, ``materialize`` (Redis password), ``notify``
(webhook with HMAC secret, Slack and Discord webhook URLs, Telegram bot token, SMTP password
over STARTTLS, browser via Redis; Discord answers 400 echoing its token, Telegram 429 once) and
``serve`` (Redis password). Every process logs at DEBUG. The scripted prices make RSI fire a BUY
and a SELL, so notifications really go out.

Then every place a secret could leak is searched for the fake secrets and for their common
marker ``DO-NOT-LEAK`` (which also catches a partial or truncated leak): every log line of every
process, every ``/metrics`` (names, labels, values) and ``/health``/``/ready`` of every service,
every record (key and value) of every Kafka topic of the run — dead-letter topics, outputs and
state changelogs — every key and value in Redis, and every API response (the endpoints, error
responses, ``/health``, ``/docs``, ``/openapi.json``, ``/metrics``, the dashboard), headers included.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from confluent_kafka.admin import AdminClient

from tests.support.fake_receivers.http import HttpReceiver, Reply, ok, status
from tests.support.fake_receivers.smtp import SmtpReceiver, self_signed_cert
from tests.support.fake_servers.alphavantage import FakeAlphaVantage, rate_body
from tests.support.fake_servers.alphavantage import Reply as AvReply
from tests.support.kafka_tools import delete_topics, read_topic, wait_until
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(420)]

MARKER = "DO-NOT-LEAK"
API_KEY = "SECRETKEY-DO-NOT-LEAK-1234"
TELEGRAM_TOKEN = "4242:TGTOKEN-DO-NOT-LEAK-5678"
SMTP_PASSWORD = "SMTPPASS-DO-NOT-LEAK-9012"
HMAC_SECRET = "HMACSECRET-DO-NOT-LEAK-3456"
SLACK_TOKEN = "SLACKTOKEN-DO-NOT-LEAK-7890"
DISCORD_TOKEN = "DISCORDTOKEN-DO-NOT-LEAK-2468"
REDIS_PASSWORD = "REDISPASS-DO-NOT-LEAK-1357"
SECRETS = [API_KEY, TELEGRAM_TOKEN, SMTP_PASSWORD, HMAC_SECRET, SLACK_TOKEN, DISCORD_TOKEN, REDIS_PASSWORD]
SLACK_PATH = f"/services/T000/B000/{SLACK_TOKEN}"
DISCORD_PATH = f"/api/webhooks/77/{DISCORD_TOKEN}"
# 16 falling prices (RSI 0), a jump (RSI ≥ 30: BUY), a rise (RSI > 70), a drop (RSI ≤ 70: SELL).
PRICES = [100 - i for i in range(16)] + [110, 130, 120]


@contextmanager
def private_redis(folder: Path) -> Iterator[int]:
    """A throwaway ``redis-server`` that requires :data:`REDIS_PASSWORD`."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "redis.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--save", "",
             "--appendonly", "no", "--requirepass", REDIS_PASSWORD], stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: b"Ready to accept connections" in log.read_bytes(), timeout_s=120,
                       message="redis-server to start")
            yield port
        finally:
            process.terminate()
            process.wait(10)


def alpha_vantage_script(now: datetime) -> list[AvReply]:
    """Answers in order: errors that echo the key, then one fresh quote per price."""
    start = now - timedelta(seconds=120)
    quotes = [AvReply.json(rate_body("BTC", "USD", f"{price:.2f}",
                                     refreshed=(start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")))
              for i, price in enumerate(PRICES)]
    return [
        AvReply.json({"Error Message": f"the parameter apikey={API_KEY} is invalid or missing."}),
        AvReply(200, f"<html>upstream proxy error for /query?apikey={API_KEY}</html>", "text/html"),
        AvReply.json([f"apikey={API_KEY}"]),
        AvReply(500, f"internal error, key {API_KEY}", "text/plain"),
        *quotes,
    ]


def subscriptions(folder: Path, web: HttpReceiver, smtp: SmtpReceiver, cert: Path) -> Path:
    path = folder / "subscriptions.toml"
    path.write_text(f"""
[channels.hook]
type = "webhook"
allow_private_network = true
url = "{web.url('/hook')}"
hmac_secret_env = "HOOK_SECRET"
[channels.slack]
type = "slack"
allow_private_network = true
webhook_url_env = "SLACK_URL"
[channels.discord]
type = "discord"
allow_private_network = true
webhook_url_env = "DISCORD_URL"
[channels.telegram]
type = "telegram"
allow_private_network = true
allow_custom_api_base = true
bot_token_env = "TELEGRAM_TOKEN"
chat_id = "4242"
api_base = "{web.url('')}"
[channels.mail]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
starttls = true
ca_file = "{cert}"
username = "alerts"
password_env = "SMTP_PASSWORD"
from = "alerts@example.com"
to = ["trader@example.com"]
[channels.browser]
type = "browser"
[channels.console]
type = "console"
""" + "".join(f'[[subscriptions]]\nchannel = "{name}"\ncooldown = 0\n'
              for name in ("hook", "slack", "discord", "telegram", "mail", "browser", "console")))
    return path


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": "*/*"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def leaks(text: str) -> list[str]:
    return [secret for secret in [*SECRETS, MARKER] if secret in text]


def test_no_secret_in_logs_metrics_records_views_or_api_responses(stack, namespace: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    cert, key = self_signed_cert(tmp_path)
    ports = {name: free_port() for name in ("ingest", "process", "materialize", "notify", "serve", "api")}
    with ExitStack() as cleanup:
        redis_port = cleanup.enter_context(private_redis(tmp_path / "redis"))
        web = cleanup.enter_context(HttpReceiver())
        smtp = cleanup.enter_context(SmtpReceiver(cert=(cert, key), user=("alerts", SMTP_PASSWORD)))
        alpha = cleanup.enter_context(FakeAlphaVantage(alpha_vantage_script(now)))
        cleanup.callback(delete_topics, stack.kafka_bootstrap, namespace)
        telegram_path = f"/bot{TELEGRAM_TOKEN}/sendMessage"
        web.default(telegram_path, ok({"ok": True, "result": {"message_id": 1}}))
        web.script(telegram_path, [Reply(429, {"ok": False, "error_code": 429, "parameters": {"retry_after": 1},
                                               "description": f"Too Many Requests (bot{TELEGRAM_TOKEN})"})])
        web.default(DISCORD_PATH, status(400, {"message": f"Invalid Webhook Token {DISCORD_TOKEN}", "code": 50027}))
        web.default(SLACK_PATH, ok("ok"))

        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        common = {"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "STOCKSTREAM_TOPIC_PREFIX": namespace,
                  "LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1"}
        with_redis = {**common, "REDIS_URL": redis_url, "REDIS_PASSWORD": REDIS_PASSWORD, "REDIS_KEY_PREFIX": namespace}
        services: dict[str, ServiceProcess] = {}

        def start(name: str, args: list[str], env: dict[str, str]) -> None:
            services[name] = ServiceProcess(args, env)
            cleanup.callback(services[name].terminate, 30)

        start("process", ["process"], {**common, "METRICS_PORT": str(ports["process"]),
                                       "PROCESS_CONSUMER_GROUP": f"{namespace}process",
                                       "PROCESS_STATE_DIR": str(tmp_path / "process-state")})
        start("materialize", ["materialize"], {**with_redis, "METRICS_PORT": str(ports["materialize"]),
                                               "MATERIALIZE_CONSUMER_GROUP": f"{namespace}materialize"})
        start("notify", ["notify"], {
            **with_redis, "METRICS_PORT": str(ports["notify"]), "NOTIFY_CONSUMER_GROUP": f"{namespace}notify",
            "NOTIFY_STATE_DIR": str(tmp_path / "notify-state"), "NOTIFY_MAX_ATTEMPTS": "2",
            "NOTIFY_BACKOFF_INITIAL_S": "0.1", "NOTIFY_SUBSCRIPTIONS": str(subscriptions(tmp_path, web, smtp, cert)),
            "HOOK_SECRET": HMAC_SECRET, "SLACK_URL": web.url(SLACK_PATH), "DISCORD_URL": web.url(DISCORD_PATH),
            "TELEGRAM_TOKEN": TELEGRAM_TOKEN, "SMTP_PASSWORD": SMTP_PASSWORD})
        start("serve", ["serve", "--port", str(ports["api"])], {**with_redis, "METRICS_PORT": str(ports["serve"])})
        start("ingest", ["ingest", "--source", "alphavantage", "--symbols", "BTC-USD"], {
            **common, "METRICS_PORT": str(ports["ingest"]), "ALPHAVANTAGE_API_KEY": API_KEY,
            "ALPHAVANTAGE_BASE_URL": alpha.url, "ALPHAVANTAGE_DAILY_BUDGET": "1000000", "MESSAGE_INTERVAL": "0.05",
            "INGEST_RETRY_INITIAL_SECONDS": "0.05", "INGEST_RETRY_MAX_SECONDS": "0.2",
            "ALPHAVANTAGE_BUDGET_DIR": str(tmp_path / "ingest-state")})

        def outputs() -> str:
            return "\n".join(f"--- {name}\n{service.output[-3000:]}" for name, service in services.items())

        # The pipeline really ran: both signals reached every channel that accepts them.
        wait_until(lambda: len(web.answered("/hook")) >= 2 and len(web.answered(SLACK_PATH)) >= 2
                   and len(web.answered(telegram_path)) >= 2 and len(smtp.mails) >= 2
                   and len(web.requests(DISCORD_PATH)) >= 2,
                   timeout_s=240, message=f"notifications on every channel\n{outputs()}")
        api = f"http://127.0.0.1:{ports['api']}"
        wait_until(lambda: b"BTC-USD" in http_get(f"{api}/symbols")[2], timeout_s=60, message="views in the API")
        assert alpha.request_count() >= len(PRICES) + 4
        assert all("apikey" in r and r["apikey"] == API_KEY for r in alpha.requests)  # the key was really used

        # --- every API response, headers included
        responses: list[tuple[str, int, dict[str, str], bytes]] = []
        targets = ["/symbols", "/health", "/docs", "/openapi.json", "/metrics", "/", "/static/docs.js", "/robots.txt",
                   "/symbols/BTC-USD/latest", "/symbols/BTC-USD/recommendation", "/symbols/BTC-USD/candles",
                   "/symbols/BTC-USD/indicators?limit=1000", "/symbols/BTC-USD/signals", "/symbols/BTC-USD/daily",
                   "/symbols/DOGE-USD/latest", "/symbols/btc-usd/latest", "/symbols/BTC-USD/candles?limit=0",
                   "/symbols/BTC-USD/daily?from=2024-02-30", "/nope", f"/symbols/BTC-USD/latest?apikey={MARKER}x"]
        for target in targets:
            code, headers, body = http_get(api + target)
            responses.append((target, code, headers, body))
        assert {code for target, code, _, _ in responses if "DOGE" in target} == {404}
        assert any(code == 422 for _, code, _, _ in responses)
        signals = json.loads(dict((t, b) for t, _, _, b in responses)["/symbols/BTC-USD/signals"])["signals"]
        assert {s["side"] for s in signals} == {"BUY", "SELL"}
        api_leaks = [(target, leaks(f"{headers}\n{body.decode('utf-8', 'replace')}"))
                     for target, _, headers, body in responses if not target.endswith(f"{MARKER}x")]
        assert not [item for item in api_leaks if item[1]], api_leaks

        # --- /metrics, /health and /ready of every service while it runs
        scraped = {}
        for name in ("ingest", "process", "materialize", "notify", "serve"):
            for path in ("/metrics", "/health", "/ready"):
                code, headers, body = http_get(f"http://127.0.0.1:{ports[name]}{path}")
                scraped[f"{name}{path}"] = f"{code} {headers}\n{body.decode('utf-8', 'replace')}"
        assert "stockstream_ingest" in scraped["ingest/metrics"]
        assert "stockstream_notify" in scraped["notify/metrics"]
        assert not {name: leaks(text) for name, text in scraped.items() if leaks(text)}

        # --- stop every service cleanly (final log lines flushed), then read what they wrote
        for name in ("ingest", "serve", "notify", "materialize", "process"):
            services[name].terminate(30)
        logs = {name: service.output for name, service in services.items()}
        assert all(" DEBUG " in text for text in logs.values()), {n: t[-500:] for n, t in logs.items()}
        assert not {name: leaks(text) for name, text in logs.items() if leaks(text)}, \
            {name: [line for line in text.splitlines() if leaks(line)][:5] for name, text in logs.items()}

        # --- every record of every topic of this run: dead letters, outputs, changelogs
        admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
        topics = sorted(name for name in admin.list_topics(timeout=10).topics if namespace in name)
        assert any(name.endswith("ticks.dlq") for name in topics), topics
        records = {topic: read_topic(stack.kafka_bootstrap, topic, read_committed=False) for topic in topics}
        dead_letters = [r for topic, rs in records.items() if "dlq" in topic for r in rs]
        # The echoed secrets really reached a dead letter, masked: the search below is not vacuous.
        letters = b"\n".join(r.value or b"" for r in dead_letters)
        assert b"apikey=***" in letters and b"Invalid Webhook Token ***" in letters, letters[:2000]
        record_leaks = [(topic, r.offset) for topic, rs in records.items() for r in rs
                        if leaks((r.key or b"").decode("utf-8", "replace") + (r.value or b"").decode("utf-8", "replace"))]
        assert not record_leaks, record_leaks

        # --- every key and value in the views store
        client = redis.Redis(host="127.0.0.1", port=redis_port, password=REDIS_PASSWORD)
        stored = []
        for name in client.scan_iter(count=1000):
            kind = client.type(name).decode()
            value = {"string": lambda n: client.get(n), "hash": lambda n: client.hgetall(n),
                     "zset": lambda n: client.zrange(n, 0, -1), "set": lambda n: client.smembers(n),
                     "list": lambda n: client.lrange(n, 0, -1)}.get(kind, lambda n: b"")(name)
            stored.append(f"{name!r} {value!r}")
        client.close()
        assert len(stored) >= 5 and not [item for item in stored if leaks(item)]
