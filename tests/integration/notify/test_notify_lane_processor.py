"""The lane's per-message logic with a real Quix state store (in memory), real local receivers and fake time.

This is everything a lane does between Kafka and the channel: ledger, cooldown,
staleness, retries, Retry-After, rate limits and dead letters, on an injected clock.
Kafka, restarts and real waiting are covered by test_notify_service.py.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from quixstreams.context import set_message_context
from quixstreams.models.messagecontext import MessageContext
from quixstreams.state.memory import MemoryStore

from processors.notify.channels import build_sender
from processors.notify.lane import LaneProcessor
from processors.notify.ledger import LedgerEntry, ledger_key
from processors.notify.settings import NotifySettings
from processors.notify.spec import LaneSpec
from processors.notify.subscriptions import NotifyConfig
from processors.runtime.observability import register_secret
from schemas.events import DeadLetter, Signal, encode
from tests.support.fake_receivers.http import HOLD, HttpReceiver, Reply, ok, status, too_many
from tests.unit.notify.factories import make_signal

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TOKEN = "555111:lane-FAKE-token-not-real"


class Lane:
    """One lane's processor fed by hand: ``feed(signal)`` is one Kafka record on partition 0, then the
    checkpoint's settle (every delivery recorded), so each test reads outcomes one signal at a time;
    ``push`` feeds without settling (deliveries stay in flight until ``settle``)."""

    def __init__(self, channel: dict[str, object], subscriptions: list[dict[str, object]] | None = None, *,
                 secrets: dict[str, str] | None = None, renotify: bool = False, **settings: object) -> None:
        self.name = f"ch-{uuid.uuid4().hex[:8]}"
        config = NotifyConfig.model_validate({
            "channels": {self.name: channel},
            "subscriptions": [{"channel": self.name, **item} for item in (subscriptions or [{"cooldown": 0}])]})
        self.settings = NotifySettings(**{"max_age_s": 900, "http_timeout_s": 2, **settings})  # type: ignore[arg-type]
        secret_values = {key: SecretStr(value) for key, value in (secrets or {}).items()}
        spec = LaneSpec(channel=self.name, config=config.channels[self.name],
                        subscriptions=config.subscriptions_of(self.name), secrets=secret_values,
                        settings=self.settings, parent_pid=0, renotify=renotify)
        self.now = T0 + timedelta(seconds=1)
        self.monotonic = 1000.0
        self.sleeps: list[float] = []
        self.spec, self.secrets = spec, secret_values
        self.dead_letters: list[tuple[str, bytes]] = []
        self.processor = self._processor()
        self.store = MemoryStore("default", "signals")
        self.store.assign_partition(0)
        self.transaction = self.store.start_partition_transaction(0)
        self.offset = 0

    def _processor(self) -> LaneProcessor:
        sender = build_sender(self.name, self.spec.config, self.secrets, self.settings, now=lambda: self.now)
        processor = LaneProcessor(self.spec, sender, now=lambda: self.now, clock=lambda: self.monotonic,
                                  sleep=self._sleep, rng=random.Random(3))
        processor.route_dead_letters(lambda key, payload: self.dead_letters.append((key, payload)))
        return processor

    def restart(self) -> None:
        """Commit the checkpoint (the changelog would hold it), then a new lane process over the same store."""
        self.processor.settle()
        self.transaction.prepare()
        self.transaction.flush()
        self.processor.close()
        self.processor = self._processor()
        self.transaction = self.store.start_partition_transaction(0)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.monotonic += seconds
        self.now += timedelta(seconds=seconds)

    def push(self, record: Signal | bytes, key: bytes = b"BTC-USD") -> None:
        value = encode(record) if isinstance(record, Signal) else record
        if isinstance(record, Signal):
            key = record.symbol.encode()
        set_message_context(MessageContext("t.signals", 0, self.offset, len(value)))
        self.offset += 1
        self.processor.handle(value, key, 0, None, self.transaction.as_state(prefix=key))

    def settle(self) -> list[tuple[str, DeadLetter]]:
        self.processor.settle()
        letters, self.dead_letters[:] = list(self.dead_letters), []
        return [(letter_key, DeadLetter.model_validate_json(payload)) for letter_key, payload in letters]

    def feed(self, record: Signal | bytes, key: bytes = b"BTC-USD") -> list[tuple[str, DeadLetter]]:
        self.push(record, key)
        return self.settle()

    def ledger(self, signal: Signal) -> LedgerEntry | None:
        raw = self.transaction.as_state(prefix=signal.symbol.encode()).get(ledger_key(signal.signal_id))
        return LedgerEntry.from_state(raw) if raw else None

    def metric(self, name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(f"stockstream_notify_{name}", {"channel": self.name, **labels}) or 0.0


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as server:
        yield server


def webhook(receiver: HttpReceiver, **extra: object) -> dict[str, object]:
    # The receiver is on 127.0.0.1: a private network, which a channel must allow explicitly.
    return {"type": "webhook", "url": receiver.url("/hook"), "allow_private_network": True, **extra}


def test_delivered_once_then_recorded_and_never_resent(receiver: HttpReceiver) -> None:
    lane = Lane(webhook(receiver))
    signal = make_signal(ts_event=T0)
    assert lane.feed(signal) == []
    assert lane.feed(signal) == []  # a replay, a restart from an older offset, a rebalance
    assert len(receiver.requests("/hook")) == 1
    entry = lane.ledger(signal)
    assert entry is not None and entry.status == "delivered" and entry.attempts == 1
    assert lane.metric("deliveries_total") == 1 and lane.metric("duplicates_suppressed_total") == 1
    assert lane.metric("delivery_latency_seconds_count") == 1
    assert lane.metric("delivery_latency_seconds_sum") == pytest.approx(1.0)  # event time → delivered


def test_cooldown_per_key_in_event_time(receiver: HttpReceiver) -> None:
    lane = Lane(webhook(receiver), [{"cooldown": "60s"}])
    first = make_signal(ts_event=T0)
    too_soon = make_signal(ts_event=T0 + timedelta(seconds=30))
    other_side = make_signal(ts_event=T0 + timedelta(seconds=30), side="SELL")
    other_symbol = make_signal(ts_event=T0 + timedelta(seconds=30), symbol="ETH-USD")
    later = make_signal(ts_event=T0 + timedelta(seconds=61))
    for signal in (first, too_soon, other_side, other_symbol, later):
        lane.now = signal.ts_event + timedelta(seconds=1)
        lane.feed(signal)
    sent = [request.json()["signal_id"] for request in receiver.requests("/hook")]
    assert sent == [first.signal_id, other_side.signal_id, other_symbol.signal_id, later.signal_id]
    assert lane.ledger(too_soon) == LedgerEntry("dropped_cooldown", lane.ledger(too_soon).at_ms)  # type: ignore[union-attr]
    assert lane.metric("dropped_by_cooldown_total") == 1


def test_stale_signals_are_recorded_not_sent_and_renotify_sends_them(receiver: HttpReceiver) -> None:
    lane = Lane(webhook(receiver), max_age_s=600)
    old = make_signal(ts_event=T0)
    lane.now = T0 + timedelta(seconds=601)
    lane.feed(old)
    assert receiver.requests("/hook") == [] and lane.ledger(old).status == "skipped_stale"  # type: ignore[union-attr]
    assert lane.metric("skipped_stale_total") == 1
    lane.feed(old)
    assert lane.metric("skipped_stale_total") == 1 and lane.metric("duplicates_suppressed_total") == 1

    renotifying = Lane(webhook(receiver), max_age_s=600, renotify=True)  # a renotify run: a ledger of its own
    renotifying.now = T0 + timedelta(days=3)
    renotifying.feed(old)
    renotifying.feed(old)
    assert len(receiver.requests("/hook")) == 1  # renotify ignores the age, by request; still once per run


def test_filtered_out_signals_leave_no_trace(receiver: HttpReceiver) -> None:
    lane = Lane(webhook(receiver), [{"symbols": ["ETH-USD"]}])
    signal = make_signal(symbol="BTC-USD", ts_event=T0)
    assert lane.feed(signal) == [] and lane.ledger(signal) is None and receiver.requests() == []


def test_429_retry_after_is_honoured_then_delivered(receiver: HttpReceiver) -> None:
    receiver.script("/hook", [too_many(2.5), too_many(1), ok()])
    lane = Lane(webhook(receiver))
    lane.feed(make_signal(ts_event=T0))
    assert [r.answered_status for r in receiver.requests("/hook")] == [429, 429, 200]
    assert lane.sleeps == [2.5, 1.0]
    assert lane.metric("retries_total", reason="http_429") == 2 and lane.metric("deliveries_total") == 1
    assert lane.metric("delivery_latency_seconds_sum") == pytest.approx(4.5)  # waiting counts in the latency


def test_telegram_retry_after_in_the_body_and_one_message_per_second(receiver: HttpReceiver) -> None:
    path = f"/bot{TOKEN}/sendMessage"
    receiver.default(path, ok({"ok": True, "result": {}}))
    receiver.script(path, [Reply(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 4",
                                       "parameters": {"retry_after": 4}})])
    lane = Lane({"type": "telegram", "bot_token_env": "TG", "chat_id": "7", "api_base": receiver.url(""),
                 "allow_custom_api_base": True, "allow_private_network": True},
                secrets={"TG": TOKEN})
    lane.feed(make_signal(ts_event=T0))
    lane.feed(make_signal(ts_event=T0))
    lane.feed(make_signal(ts_event=T0))
    # 429 → wait 4 s (the body's retry_after; the bucket refilled meanwhile); then 1 msg/s per chat.
    assert lane.sleeps == [4.0, 1.0, 1.0]
    assert len(receiver.answered(path)) == 3 and lane.metric("deliveries_total") == 3


def test_server_errors_back_off_with_jitter(receiver: HttpReceiver) -> None:
    receiver.script("/hook", [status(500), status(502), ok()])
    lane = Lane(webhook(receiver), backoff_initial_s=1, backoff_max_s=30)
    lane.feed(make_signal(ts_event=T0))
    assert len(lane.sleeps) == 2 and 0.5 <= lane.sleeps[0] <= 1 and 1 <= lane.sleeps[1] <= 2
    assert lane.metric("deliveries_total") == 1


def test_permanent_failure_goes_to_the_dlq_once_and_is_counted(receiver: HttpReceiver) -> None:
    register_secret(TOKEN)
    receiver.default("/hook", status(400, f"invalid payload, token {TOKEN}"))
    lane = Lane(webhook(receiver))
    signal = make_signal(ts_event=T0)
    [(key, letter)] = lane.feed(signal)
    assert key == signal.signal_id
    assert letter.reason == "http_400" and letter.source == f"notify:{lane.name}"
    assert Signal.model_validate_json(letter.raw) == signal
    assert letter.origin is not None and (letter.origin.topic, letter.origin.offset) == ("t.signals", 0)
    assert TOKEN not in letter.detail and "***" in letter.detail
    assert lane.ledger(signal).status == "dead_lettered" and lane.ledger(signal).reason == "http_400"  # type: ignore[union-attr]
    assert lane.feed(signal) == [] and len(receiver.requests("/hook")) == 1  # not retried on replay
    assert lane.metric("failures_total", reason="http_400") == 1 and lane.sleeps == []


def test_retries_exhausted_goes_to_the_dlq(receiver: HttpReceiver) -> None:
    receiver.default("/hook", status(503))
    lane = Lane(webhook(receiver), max_attempts=3, backoff_initial_s=0.1)
    [(_, letter)] = lane.feed(make_signal(ts_event=T0))
    assert letter.reason == "retries_exhausted" and "http_503" in letter.detail
    assert len(receiver.requests("/hook")) == 3 and lane.metric("retries_total", reason="http_503") == 2


def test_invalid_records_are_dead_lettered_not_crashing() -> None:
    lane = Lane({"type": "console"})
    wrong = json.loads(encode(make_signal()))
    wrong["side"] = "HOLD"
    for raw in (b"not json", json.dumps(wrong).encode(), b"{}"):
        [(key, letter)] = lane.feed(raw)
        assert letter.reason == "invalid_signal" and key.startswith("invalid:0:") and letter.raw == raw.decode()
    assert lane.metric("invalid_signals_total") == 3


def test_console_channel_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    lane = Lane({"type": "console"}, dashboard_url="https://dash.example.com")
    signal = make_signal(ts_event=T0, side="SELL", symbol="ETH-USD", price=3012.5)
    lane.feed(signal)
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"NOTIFY {lane.name} SELL ETH-USD at 3,012.50 [1m rsi_reversal]")
    assert signal.signal_id in line and "https://dash.example.com/?symbol=ETH-USD" in line


# ---- concurrency within a lane ---------------------------------------------------------------------

def test_deliveries_run_concurrently_and_are_recorded_only_when_settled(receiver: HttpReceiver) -> None:
    receiver.script("/hook", [HOLD] * 4)  # four requests hang together, then their connections drop (retried)
    lane = Lane(webhook(receiver))
    signals = [make_signal(symbol=symbol, ts_event=T0) for symbol in ("BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD")]
    for signal in signals:
        lane.push(signal)
    held = receiver.wait_for(4, "/hook")  # all four open at the same time: one lane, concurrent deliveries
    assert [request.answered_status for request in held] == [None] * 4
    assert [lane.ledger(signal) for signal in signals] == [None] * 4  # nothing recorded while in flight
    receiver.release()
    assert lane.settle() == []
    entries = [lane.ledger(signal) for signal in signals]
    assert all(entry is not None and entry.status == "delivered" and entry.attempts == 2 for entry in entries)
    assert lane.metric("deliveries_total") == 4 and lane.metric("retries_total", reason="connection_error") == 4


def test_the_window_is_the_channel_burst_at_most_max_in_flight(receiver: HttpReceiver) -> None:
    assert Lane(webhook(receiver)).processor.window.size == 10  # webhook default: 10/s, burst 10
    assert Lane(webhook(receiver, rate_limit={"per_second": 1, "burst": 3})).processor.window.size == 3
    assert Lane(webhook(receiver), max_in_flight=4).processor.window.size == 4
    assert Lane({"type": "telegram", "bot_token_env": "TG", "chat_id": "7", "api_base": receiver.url(""),
                 "allow_custom_api_base": True, "allow_private_network": True},
                secrets={"TG": TOKEN}).processor.window.size == 1  # one message per second per chat, in order
    assert Lane({"type": "console"}).processor.window.size == 1  # inline: a line on stdout


def test_a_duplicate_of_a_signal_in_flight_is_suppressed(receiver: HttpReceiver) -> None:
    receiver.script("/hook", [HOLD])
    lane = Lane(webhook(receiver))
    signal = make_signal(ts_event=T0)
    lane.push(signal)
    receiver.wait_for(1, "/hook")
    lane.push(signal)  # re-emitted while the first delivery is still running
    receiver.release()
    lane.settle()
    assert [r.json()["signal_id"] for r in receiver.answered("/hook")] == [signal.signal_id]
    assert lane.metric("duplicates_suppressed_total") == 1 and lane.metric("deliveries_total") == 1


@pytest.mark.parametrize(("first_reply", "expected"), [(ok(), "dropped_cooldown"), (status(400), "delivered")],
                         ids=["first-delivered", "first-dead-lettered"])
def test_a_cooldown_decision_waits_for_the_delivery_it_depends_on(receiver: HttpReceiver, first_reply: Reply,
                                                                  expected: str) -> None:
    """The second signal (same key, inside the cooldown) is decided only once the first one's delivery
    settled: dropped if it was delivered, sent if it failed (a failure sets no cooldown)."""
    receiver.script("/hook", [HOLD, first_reply])
    lane = Lane(webhook(receiver), [{"cooldown": "60s"}])
    first, second = make_signal(ts_event=T0), make_signal(ts_event=T0 + timedelta(seconds=30))
    lane.push(first)
    receiver.wait_for(1, "/hook")
    decided = threading.Event()

    def push_second() -> None:
        lane.push(second)  # blocks in handle() until the first delivery has settled
        decided.set()

    pusher = threading.Thread(target=push_second)
    pusher.start()
    receiver.release()
    pusher.join(60)
    assert decided.is_set()
    lane.settle()
    assert lane.ledger(second).status == expected  # type: ignore[union-attr]
    assert len(receiver.requests("/hook")) == (2 if expected == "dropped_cooldown" else 3)
