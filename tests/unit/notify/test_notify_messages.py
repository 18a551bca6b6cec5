"""What the notifications say, on every channel (pure rendering)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from processors.notify.channels import browser, discord, slack, telegram, webhook
from processors.notify.channels.email import build_message
from processors.notify.notification import format_number, format_time, render
from tests.unit.notify.factories import make_signal

SIGNAL = make_signal(symbol="BTC-USD", side="BUY", rule="rsi_reversal", timeframe="1m", price=43251.2,
                     ts_event=datetime(2024, 5, 1, 12, 34, 56, 789000, tzinfo=UTC),
                     indicators={"rsi_14": 30.4213, "ema_12": 43200.114, "macd_hist": -0.000123456, "sma_20": None})
NOTE = render(SIGNAL, "https://dash.example.com/")
TRADER_FACTS = ["BUY", "BTC-USD", "43,251.20", "rsi_reversal", "1m", "2024-05-01 12:34:56.789 UTC",
                "rsi_14", "30.42", "ema_12", "43,200.11", "macd_hist", "-0.0001235"]


@pytest.mark.parametrize(("value", "text"), [(43251.2, "43,251.20"), (30.4213, "30.42"), (1.0, "1.00"),
                                             (0.52341, "0.5234"), (0.0001234, "0.0001234"), (0.0, "0"),
                                             (-1234.5, "-1,234.50"), (None, "n/a")])
def test_number_formatting(value: float | None, text: str) -> None:
    assert format_number(value) == text


def test_plain_text_has_everything_a_trader_needs() -> None:
    assert NOTE.title == "BUY BTC-USD · rsi_reversal (1m)"
    for fact in TRADER_FACTS:
        assert fact in NOTE.text
    assert "sma_20 n/a" in NOTE.text
    link = f"https://dash.example.com/?symbol=BTC-USD&venue=coinbase&timeframe=1m&signal={SIGNAL.signal_id}"
    assert NOTE.url == link and f"Dashboard: {link}" in NOTE.text
    assert format_time(SIGNAL.ts_event) == "2024-05-01 12:34:56.789 UTC"


def test_no_link_without_a_dashboard_url() -> None:
    note = render(SIGNAL, None)
    assert note.url is None and "Dashboard" not in note.text and "http" not in note.one_line


def test_rendering_is_deterministic() -> None:
    assert render(SIGNAL, None) == render(SIGNAL, None)


def test_webhook_body_carries_the_signal_and_the_text() -> None:
    body = webhook.payload(NOTE, "desk")
    assert body["signal_id"] == SIGNAL.signal_id and body["channel"] == "desk" and body["url"] == NOTE.url
    assert body["signal"] == json.loads(SIGNAL.model_dump_json())
    assert body["text"] == NOTE.text


def test_hmac_signature_is_verifiable_and_bound_to_body_and_time() -> None:
    body = b'{"a":1}'
    signature = webhook.sign("k3y-secret", "1714566896", body)
    expected = hmac.new(b"k3y-secret", b"1714566896." + body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert webhook.verify_signature("k3y-secret", "1714566896", body, signature, now_s=1714566900)
    assert not webhook.verify_signature("k3y-secret", "1714566896", body + b" ", signature, now_s=1714566900)
    assert not webhook.verify_signature("other", "1714566896", body, signature, now_s=1714566900)
    assert not webhook.verify_signature("k3y-secret", "1714566896", body, signature, now_s=1714566896 + 301)


def test_slack_blocks() -> None:
    body = slack.payload(NOTE)
    dumped = json.dumps(body, ensure_ascii=False)
    for fact in TRADER_FACTS:
        assert fact in dumped
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": NOTE.title}}
    assert {"type": "button", "text": {"type": "plain_text", "text": "Open dashboard"}, "url": NOTE.url} in \
        body["blocks"][-2]["elements"]
    assert body["text"].startswith(NOTE.title)


def test_discord_embed() -> None:
    body = discord.payload(NOTE)
    embed = body["embeds"][0]
    assert embed["color"] == discord.BUY_COLOUR and embed["url"] == NOTE.url
    assert embed["timestamp"] == "2024-05-01T12:34:56.789000+00:00"
    assert body["allowed_mentions"] == {"parse": []}
    dumped = json.dumps(body, ensure_ascii=False)
    for fact in TRADER_FACTS:
        assert fact in dumped
    sell = discord.payload(render(make_signal(side="SELL"), None))["embeds"][0]
    assert sell["color"] == discord.SELL_COLOUR and "url" not in sell


def test_telegram_html_escapes_and_links() -> None:
    text = telegram.message_html(NOTE)
    assert text.startswith("🟢 <b>BUY BTC-USD at 43,251.20</b>")
    for fact in TRADER_FACTS:
        assert fact in text
    assert f'<a href="https://dash.example.com/?symbol=BTC-USD&amp;venue=coinbase&amp;timeframe=1m&amp;signal={SIGNAL.signal_id}">' in text


def test_browser_message_follows_the_api_contract() -> None:
    body = browser.payload(NOTE)
    assert set(body) == {"signal_id", "title", "text", "url", "signal"}
    assert body["signal"]["symbol"] == "BTC-USD"


def test_mail_has_a_stable_message_id_and_the_text() -> None:
    message = build_message(NOTE, channel="alice-mail", sender="a@example.com", to=["b@example.com", "c@example.com"],
                            now=datetime(2024, 5, 1, 12, 35, tzinfo=UTC))
    assert message["Subject"] == NOTE.title
    assert message["Message-ID"] == f"<{SIGNAL.signal_id}.alice-mail@stockstream.notify>"
    assert message["To"] == "b@example.com, c@example.com"
    assert NOTE.text in message.get_content()
