"""``stockstream notify`` as a real process on the real broker, against local stand-ins of every service.

Signals are produced straight onto a namespaced ``signals`` topic (no stream processor
needed). Secrets are recognisable fake values, so the tests can prove none of them
ever reaches the logs or the dead-letter topic.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from processors.notify.channels.webhook import verify_signature
from schemas.events import DeadLetter
from tests.integration.notify.conftest import NotifyBench
from tests.support.fake_receivers.http import HOLD, HttpReceiver, Reply, ok, status, too_many
from tests.support.fake_receivers.smtp import SmtpReceiver, self_signed_cert
from tests.support.kafka_tools import read_topic, wait_until
from tests.support.processes import ServiceProcess
from tests.unit.notify.factories import make_signal

# Each test's own waits add up to a few minutes at most when something is wrong; a run takes ~30-60 s.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

HOOK_SECRET = "whsec-FAKE-hmac-4f1c9e"
TELEGRAM_TOKEN = "424242:FAKE-telegram-token-7d2a"
SMTP_PASSWORD = "FAKE-smtp-password-19b3"
SLACK_PATH = "/services/T000/B000/FAKEslackTOKEN83c1"
DISCORD_PATH = "/api/webhooks/77/FAKEdiscordTOKEN5e0b"
SECRETS = [HOOK_SECRET, TELEGRAM_TOKEN, SMTP_PASSWORD, "FAKEslackTOKEN83c1", "FAKEdiscordTOKEN5e0b"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@contextmanager
def notifier(bench: NotifyBench, *args: str, **env: str) -> Iterator[ServiceProcess]:
    service = ServiceProcess(["notify", *args], {**bench.env, **env})
    try:
        yield service
    finally:
        if service.alive():
            service.terminate(20)


def log_of(service: ServiceProcess) -> str:
    return service.log_path.read_text(errors="replace")


def test_every_channel_gets_exactly_what_it_subscribed_to(bench: NotifyBench, tmp_path: Path) -> None:
    """Filters, cooldown, staleness, 429 + Retry-After, a permanent failure to the DLQ, HMAC, metrics,
    and no secret in any log line or dead letter."""
    now = datetime.now(UTC)
    s1 = make_signal(symbol="BTC-USD", side="BUY", rule="rsi_reversal", timeframe="1m", ts_event=now - timedelta(seconds=60))
    s2 = make_signal(symbol="BTC-USD", side="BUY", rule="rsi_reversal", timeframe="1m", ts_event=now - timedelta(seconds=50))
    s3 = make_signal(symbol="ETH-USD", side="SELL", rule="ema_cross", timeframe="5m", ts_event=now - timedelta(seconds=40))
    stale = make_signal(symbol="BTC-USD", side="SELL", rule="macd_cross", timeframe="1m", ts_event=now - timedelta(hours=2))
    cert, key = self_signed_cert(tmp_path)
    with HttpReceiver() as web, SmtpReceiver(cert=(cert, key), user=("alerts", SMTP_PASSWORD)) as smtp:
        telegram_path = f"/bot{TELEGRAM_TOKEN}/sendMessage"
        web.default(telegram_path, ok({"ok": True, "result": {"message_id": 1}}))
        web.script(telegram_path, [Reply(429, {"ok": False, "error_code": 429, "parameters": {"retry_after": 1},
                                               "description": "Too Many Requests: retry after 1"})])
        web.default(DISCORD_PATH, status(400, {"message": "Invalid Webhook Token FAKEdiscordTOKEN5e0b", "code": 50027}))
        subscriptions = write(tmp_path / "subs.toml", f"""
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

[[subscriptions]]
channel = "hook"
cooldown = "60s"
[[subscriptions]]
channel = "slack"
symbols = ["BTC-USD"]
cooldown = 0
[[subscriptions]]
channel = "discord"
cooldown = 0
[[subscriptions]]
channel = "telegram"
sides = ["BUY"]
cooldown = 0
[[subscriptions]]
channel = "mail"
timeframes = ["5m"]
[[subscriptions]]
channel = "browser"
cooldown = "60s"
[[subscriptions]]
channel = "console"
cooldown = 0
""")
        listener = redis.Redis.from_url(bench.env["REDIS_URL"]).pubsub()
        listener.subscribe(f"{bench.namespace}live:notifications")
        published: list[dict[str, object]] = []
        stop_listening = threading.Event()

        def listen() -> None:
            while not stop_listening.is_set():
                message = listener.get_message(timeout=0.2, ignore_subscribe_messages=True)
                if message is not None:
                    published.append(json.loads(message["data"]))

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        bench.produce([s1, s2, s3, stale, ("BTC-USD", b"{not a signal")])
        env = {"NOTIFY_SUBSCRIPTIONS": str(subscriptions), "HOOK_SECRET": HOOK_SECRET, "SLACK_URL": web.url(SLACK_PATH),
               "DISCORD_URL": web.url(DISCORD_PATH), "TELEGRAM_TOKEN": TELEGRAM_TOKEN, "SMTP_PASSWORD": SMTP_PASSWORD,
               "NOTIFY_MAX_AGE_S": "600", "NOTIFY_HTTP_TIMEOUT_S": "60", "NOTIFY_DASHBOARD_URL": "https://dash.example.com",
               "LOG_LEVEL": "DEBUG"}
        with notifier(bench, **env) as service:
            hook = web.wait_for(2, "/hook", status_code=200, timeout_s=90)
            slack = web.wait_for(2, SLACK_PATH, status_code=200, timeout_s=60)
            telegram = web.wait_for(2, telegram_path, status_code=200, timeout_s=60)
            mails = smtp.wait_for(1, timeout_s=60)
            web.wait_for(3, DISCORD_PATH, timeout_s=60)
            wait_until(lambda: len(published) >= 2, timeout_s=60, message="browser notifications")
            wait_until(lambda: log_of(service).count("NOTIFY console ") >= 3, timeout_s=60, message="console lines")
            for channel in ("hook", "slack", "discord", "telegram", "mail", "browser", "console"):
                wait_until(lambda c=channel: bench.caught_up(c), timeout_s=60, message=f"lane {channel} to commit")
            metrics = {
                "hook": bench.metric("deliveries_total", channel="hook"),
                "hook_cooldown": bench.metric("dropped_by_cooldown_total", channel="hook"),
                "browser_cooldown": bench.metric("dropped_by_cooldown_total", channel="browser"),
                "stale": sum(bench.metric("skipped_stale_total", channel=c)
                             for c in ("hook", "slack", "discord", "browser", "console")),
                "discord_400": bench.metric("failures_total", channel="discord", reason="http_400"),
                "telegram_429": bench.metric("retries_total", channel="telegram", reason="http_429"),
                "latency_count": bench.metric("delivery_latency_seconds_count", channel="slack"),
                "latency_le_1h": bench.metric("delivery_latency_seconds_bucket", channel="slack", le="600.0"),
                "invalid": sum(bench.metric("invalid_signals_total", channel=c) for c in ("hook", "mail")),
            }
            service.process.send_signal(signal.SIGTERM)
            assert service.wait(30) == 0
        stop_listening.set()
        thread.join(5)
        listener.close()

    ids = {s.signal_id: name for name, s in {"s1": s1, "s2": s2, "s3": s3, "stale": stale}.items()}

    def names(requests: list) -> list[str]:  # type: ignore[type-arg]
        return sorted(ids[r.json()["signal_id"]] for r in requests)

    assert names(hook) == ["s1", "s3"]  # s2 came 10 s after s1: cooldown 60 s
    assert len(web.requests("/hook")) == 2
    for request in hook:
        assert verify_signature(HOOK_SECRET, request.headers["x-stockstream-timestamp"], request.body,
                                request.headers["x-stockstream-signature"], now_s=time.time())
        assert request.headers["idempotency-key"] == f"{request.json()['signal_id']}:hook"
    assert sorted(ids[json.loads(r.body)["blocks"][-1]["elements"][0]["text"].split("`")[1]] for r in slack) == ["s1", "s2"]
    assert len(web.requests(SLACK_PATH)) == 2
    requests = web.requests(telegram_path)
    assert [r.answered_status for r in requests] == [429, 200, 200]
    assert requests[1].received_at - requests[0].received_at >= 1.0  # retry_after honoured
    assert sorted(json.loads(r.body)["chat_id"] for r in telegram) == ["4242", "4242"]
    assert [m.message["X-Stockstream-Signal-Id"] for m in mails] == [s3.signal_id] and len(smtp.mails) == 1
    assert mails[0].tls and mails[0].login == "alerts" and "SELL ETH-USD" in mails[0].message["Subject"]
    assert f"https://dash.example.com/?symbol=ETH-USD&venue=coinbase&timeframe=5m&signal={s3.signal_id}" in mails[0].body
    assert sorted(ids[str(p["signal_id"])] for p in published) == ["s1", "s3"]
    assert set(published[0]) == {"signal_id", "title", "text", "url", "signal"}
    output = log_of(service)
    console_lines = [line for line in output.splitlines() if line.startswith("NOTIFY console ")]
    assert len(console_lines) == 3 and sum(s.signal_id in "".join(console_lines) for s in (s1, s2, s3)) == 3

    assert metrics == {"hook": 2, "hook_cooldown": 1, "browser_cooldown": 1, "stale": 5, "discord_400": 3,
                       "telegram_429": 1, "latency_count": 2, "latency_le_1h": 2, "invalid": 2}

    letters = [(r.key, DeadLetter.model_validate_json(r.value)) for r in read_topic(bench.bootstrap, bench.dlq_topic)]
    failures = [(key, letter) for key, letter in letters if letter.reason == "http_400"]
    assert sorted(key.decode() for key, _ in failures) == sorted([s1.signal_id, s2.signal_id, s3.signal_id])
    assert all(letter.source == "notify:discord" and "Invalid Webhook Token ***" in letter.detail for _, letter in failures)
    invalid = [letter for _, letter in letters if letter.reason == "invalid_signal"]
    assert sorted(letter.source for letter in invalid) == sorted(
        f"notify:{c}" for c in ("hook", "slack", "discord", "telegram", "mail", "browser", "console"))
    assert len(letters) == 3 + 7

    dump = output + "".join(letter.model_dump_json() for _, letter in letters)
    assert "DEBUG" in output and "Invalid Webhook Token ***" in output  # verbose logs, redacted
    for secret in SECRETS:
        assert secret not in dump, f"secret {secret[:8]}… leaked"


def test_a_hung_channel_does_not_hold_up_another(bench: NotifyBench, tmp_path: Path) -> None:
    """The hung channel's first delivery never gets an answer; meanwhile the fast channel delivers every
    signal, including ones produced after the hang began. Released, the hung channel catches up."""
    now = datetime.now(UTC)
    signals = [make_signal(symbol=symbol, ts_event=now - timedelta(seconds=10 - i))
               for i, symbol in enumerate(["BTC-USD", "ETH-USD", "SOL-USD"])]
    with HttpReceiver() as web:
        web.script("/hung", [HOLD])
        subscriptions = write(tmp_path / "subs.toml", f"""
[channels.hung]
type = "webhook"
allow_private_network = true
url = "{web.url('/hung')}"
[channels.fast]
type = "webhook"
allow_private_network = true
url = "{web.url('/fast')}"
[[subscriptions]]
channel = "hung"
cooldown = 0
[[subscriptions]]
channel = "fast"
cooldown = 0
""")
        bench.produce(signals[:1])
        with notifier(bench, NOTIFY_SUBSCRIPTIONS=str(subscriptions), NOTIFY_HTTP_TIMEOUT_S="120") as service:
            web.wait_for(1, "/hung", timeout_s=90)
            web.wait_for(1, "/fast", status_code=200, timeout_s=90)
            bench.produce(signals[1:])
            fast = web.wait_for(3, "/fast", status_code=200, timeout_s=60)
            assert web.requests("/hung")[0].answered_status is None  # the hung channel's first delivery still hangs
            web.release()
            hung = web.wait_for(3, "/hung", status_code=200, timeout_s=60)
            assert bench.metric("retries_total", channel="hung", reason="connection_error") == 1
            assert service.terminate(20) == 0
    assert sorted(r.json()["signal_id"] for r in fast) == sorted(s.signal_id for s in signals)
    assert sorted(r.json()["signal_id"] for r in hung) == sorted(s.signal_id for s in signals)
    assert len(web.requests("/hung")) == 4 and len(web.requests("/fast")) == 3


def _lane_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status_file = Path(f"/proc/{pid}/status")
    return not status_file.exists() or "zombie" in status_file.read_text()


def test_no_duplicates_after_kill_9_and_restart_mid_run(bench: NotifyBench, tmp_path: Path) -> None:
    """Five deliveries are acknowledged and committed; in the next batch one delivery hangs; the supervisor
    is killed with SIGKILL (its lane must exit on its own) and the notifier restarts. Nothing committed is
    ever sent again; the uncommitted batch may be sent again (the documented duplicate window), each time
    with the same ``Idempotency-Key``; every signal is acknowledged, so a receiver that deduplicates by
    key sees each of the 12 exactly once."""
    now = datetime.now(UTC)
    signals = [make_signal(symbol=symbol, ts_event=now - timedelta(seconds=30 - i))
               for i, symbol in enumerate(["BTC-USD", "ETH-USD", "SOL-USD"] * 4)]
    committed, batch = signals[:5], signals[5:]
    with HttpReceiver() as web:
        subscriptions = write(tmp_path / "subs.yaml", f"""
channels:
  hook: {{type: webhook, allow_private_network: true, url: "{web.url('/hook')}"}}
subscriptions:
  - {{channel: hook, cooldown: 0}}
""")
        env = {"NOTIFY_SUBSCRIPTIONS": str(subscriptions), "NOTIFY_HTTP_TIMEOUT_S": "60"}
        bench.produce(committed)
        with notifier(bench, **env) as first:
            web.wait_for(5, "/hook", status_code=200, timeout_s=90)
            wait_until(lambda: bench.caught_up("hook"), timeout_s=60, message="the first five to be committed")
            web.script("/hook", [HOLD])
            bench.produce(batch)
            web.wait_for(6, "/hook", timeout_s=90)  # the batch's first delivery hangs (its checkpoint cannot commit)
            lanes = _lane_pids(first.process.pid)
            assert len(lanes) == 1
            os.kill(first.process.pid, signal.SIGKILL)  # the supervisor only: its lane must notice and exit
            first.process.wait(60)
            wait_until(lambda: all(_gone(pid) for pid in lanes), timeout_s=60, message="orphan lane to exit")
        held = web.requests("/hook")[5].json()["signal_id"]
        web.release()
        with notifier(bench, **env) as second:
            wait_until(lambda: {r.json()["signal_id"] for r in web.answered("/hook")} >= {s.signal_id for s in signals},
                       timeout_s=90, message="every signal acknowledged")
            wait_until(lambda: bench.caught_up("hook"), timeout_s=60, message="lane to commit")
            second.terminate(20)
        requests = web.requests("/hook")
    sent = [r.json()["signal_id"] for r in requests]
    for signal_ in committed:
        assert sent.count(signal_.signal_id) == 1  # committed: never sent again
    assert sent.count(held) == 2  # the unacknowledged delivery, once more after the restart
    for signal_ in batch:
        assert 1 <= sent.count(signal_.signal_id) <= 2  # at most the one re-send of the uncommitted batch
    assert all(r.headers["idempotency-key"] == f"{r.json()['signal_id']}:hook" for r in requests)
    acknowledged_keys = [r.headers["idempotency-key"] for r in requests if r.answered_status == 200]
    assert sorted(set(acknowledged_keys)) == sorted(f"{s.signal_id}:hook" for s in signals)


def test_replay_does_not_renotify_and_renotify_does(bench: NotifyBench, tmp_path: Path) -> None:
    """The same signals appear again in the log (a reprocessing re-emits them with the same ids) and the
    notifier restarts: nothing is sent twice. ``--renotify`` then re-announces every signal once, the
    stale one included, and exits by itself."""
    now = datetime.now(UTC)
    fresh = [make_signal(symbol="BTC-USD", side=side, ts_event=now - timedelta(seconds=20 - i))
             for i, side in enumerate(["BUY", "SELL", "BUY"])]
    old = make_signal(symbol="ETH-USD", ts_event=now - timedelta(hours=3))
    with HttpReceiver() as web:
        subscriptions = write(tmp_path / "subs.toml", f"""
[channels.hook]
type = "webhook"
allow_private_network = true
url = "{web.url('/hook')}"
[[subscriptions]]
channel = "hook"
cooldown = 0
""")
        env = {"NOTIFY_SUBSCRIPTIONS": str(subscriptions), "NOTIFY_MAX_AGE_S": "600"}
        bench.produce([*fresh, old])
        with notifier(bench, **env) as live:
            web.wait_for(3, "/hook", status_code=200, timeout_s=90)
            wait_until(lambda: bench.caught_up("hook"), timeout_s=60, message="live lane to commit")
            assert bench.metric("skipped_stale_total", channel="hook") == 1
            assert live.terminate(20) == 0
        bench.produce([*fresh, old])
        with notifier(bench, **env) as restarted:
            wait_until(lambda: bench.metric("duplicates_suppressed_total", channel="hook") == 4, timeout_s=90,
                       message="the re-emitted signals to be recognised")
            wait_until(lambda: bench.caught_up("hook"), timeout_s=60, message="live lane to commit")
            assert restarted.terminate(20) == 0
        assert len(web.requests("/hook")) == 3
        with notifier(bench, "--renotify", **env) as renotify:
            assert renotify.wait(120) == 0  # exits by itself once it has caught up with the log
            assert "renotify caught up with the log" in log_of(renotify)
        again = [r.json()["signal_id"] for r in web.requests("/hook")[3:]]
    # The log holds each signal twice; the renotify run announces each once, the stale one included.
    assert sorted(again) == sorted(s.signal_id for s in [*fresh, old])


def test_a_stop_does_not_wait_out_a_retry_after_and_the_signal_is_sent_after_restart(bench: NotifyBench,
                                                                                      tmp_path: Path) -> None:
    with HttpReceiver() as web:
        web.script("/hook", [too_many(500)])
        subscriptions = write(tmp_path / "subs.toml", f"""
[channels.hook]
type = "webhook"
allow_private_network = true
url = "{web.url('/hook')}"
[[subscriptions]]
channel = "hook"
cooldown = 0
""")
        # Retry-After 500 s, grace 450 s: a stop that waited out either could not exit within the 300 s allowed
        # below, however slow the machine (exit 0: the lanes stopped by themselves, nobody was SIGKILLed).
        env = {"NOTIFY_SUBSCRIPTIONS": str(subscriptions), "NOTIFY_RETRY_DEADLINE_S": "600",
               "NOTIFY_SHUTDOWN_GRACE_S": "450"}
        bench.produce([make_signal(ts_event=datetime.now(UTC))])
        with notifier(bench, **env) as first:
            web.wait_for(1, "/hook", status_code=429, timeout_s=120)
            first.process.send_signal(signal.SIGTERM)  # the supervisor stops its lanes
            assert first.wait(300) == 0
        with notifier(bench, **env) as second:
            web.wait_for(1, "/hook", status_code=200, timeout_s=90)
            wait_until(lambda: bench.caught_up("hook"), timeout_s=60, message="lane to commit")
            assert second.terminate(20) == 0
    assert [r.answered_status for r in web.requests("/hook")] == [429, 200]


def test_the_ledger_moves_with_the_partitions_to_another_instance(bench: NotifyBench, tmp_path: Path) -> None:
    """Instance A delivers and goes away; instance B (another host: its own state folder, empty) takes the
    partitions over, restores the ledger from the changelog topic, and does not re-send what A delivered
    when those signals show up again; new signals it delivers once."""
    now = datetime.now(UTC)
    symbols = ["BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "XRP-USD", "DOGE-USD", "AAPL", "MSFT"]
    first = [make_signal(symbol=symbol, ts_event=now - timedelta(seconds=30)) for symbol in symbols]
    second = [make_signal(symbol=symbol, ts_event=now - timedelta(seconds=10)) for symbol in symbols]
    with HttpReceiver() as web:
        subscriptions = write(tmp_path / "subs.toml", f"""
[channels.hook]
type = "webhook"
allow_private_network = true
url = "{web.url('/hook')}"
[[subscriptions]]
channel = "hook"
cooldown = 0
""")
        env = {"NOTIFY_SUBSCRIPTIONS": str(subscriptions)}
        bench.produce(first)
        with notifier(bench, NOTIFY_INSTANCE_ID="host-a", NOTIFY_STATE_DIR=str(tmp_path / "a"), **env) as a:
            web.wait_for(8, "/hook", status_code=200, timeout_s=90)
            wait_until(lambda: bench.caught_up("hook"), timeout_s=60, message="instance A to commit")
            assert a.terminate(20) == 0
        bench.produce([*first, *second])  # the first eight again (re-emitted), then eight new ones
        with notifier(bench, NOTIFY_INSTANCE_ID="host-b", NOTIFY_STATE_DIR=str(tmp_path / "b"), **env) as b:
            web.wait_for(16, "/hook", status_code=200, timeout_s=120)
            wait_until(lambda: bench.caught_up("hook"), timeout_s=60, message="instance B to commit")
            assert bench.metric("duplicates_suppressed_total", channel="hook") == 8
            assert b.terminate(20) == 0
        sent = [r.json()["signal_id"] for r in web.requests("/hook")]
    assert sorted(sent) == sorted(s.signal_id for s in [*first, *second])  # 16 requests, none twice


def test_without_a_subscription_file_every_signal_is_printed(bench: NotifyBench) -> None:
    signal_ = make_signal(symbol="SOL-USD", side="SELL", price=142.5, ts_event=datetime.now(UTC))
    bench.produce([signal_])
    with notifier(bench) as service:
        wait_until(lambda: "NOTIFY console SELL SOL-USD at 142.50 [1m rsi_reversal]" in log_of(service),
                   timeout_s=90, message="the console line")
        assert signal_.signal_id in log_of(service)
