"""Each channel sender against a real local server speaking the service's protocol.

HTTP receiver for webhook/Slack/Discord/Telegram, aiosmtpd for mail (plain, and
STARTTLS + AUTH with a throw-away certificate), the shared Redis for the browser channel.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from processors.notify.channels import build_sender
from processors.notify.channels.webhook import verify_signature
from processors.notify.notification import render
from processors.notify.retry import PermanentDeliveryError, TransientDeliveryError
from processors.notify.settings import NotifySettings
from processors.notify.subscriptions import NotifyConfig
from tests.support.fake_receivers.http import HttpReceiver, Reply, ok, slow, status, too_many
from tests.support.fake_receivers.smtp import SmtpReceiver, self_signed_cert
from tests.support.senders import send_now
from tests.unit.notify.factories import make_signal

NOW = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
SIGNAL = make_signal(ts_event=datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC))
NOTE = render(SIGNAL, "https://dash.example.com")
TOKEN = "987654:FAKE-telegram-token-for-tests"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as server:
        yield server


def local(channel: dict[str, object]) -> dict[str, object]:
    """The channel as these tests need it: its servers are on 127.0.0.1, a private network (channels refuse
    that unless they say so, test_notify_egress.py), Telegram's API is a local one, mail goes in clear."""
    kind = channel["type"]
    extra: dict[str, object] = {}
    if kind in ("webhook", "slack", "discord", "telegram"):
        extra["allow_private_network"] = True
    if kind == "telegram":
        extra["allow_custom_api_base"] = True
    if kind == "email" and "username" not in channel:
        extra["starttls"] = False
    return {**extra, **channel}


def sender_for(channel: dict[str, object], secrets: dict[str, str] | None = None, **settings: object):  # type: ignore[no-untyped-def]
    config = NotifyConfig.model_validate({"channels": {"ch": local(channel)}, "subscriptions": [{"channel": "ch"}]})
    return build_sender("ch", config.channels["ch"], {k: SecretStr(v) for k, v in (secrets or {}).items()},
                        NotifySettings(http_timeout_s=settings.pop("http_timeout_s", 5.0), **settings),  # type: ignore[arg-type]
                        now=lambda: NOW)


def test_webhook_posts_signed_json_with_an_idempotency_key(receiver: HttpReceiver) -> None:
    sender = sender_for({"type": "webhook", "url": receiver.url("/hook"), "hmac_secret_env": "HOOK_KEY",
                         "headers": {"X-Team": "desk"}}, {"HOOK_KEY": "hmac-k3y-for-tests"})
    send_now(sender, NOTE)
    [request] = receiver.requests("/hook")
    body = request.json()
    assert body["signal_id"] == SIGNAL.signal_id and body["signal"]["price"] == SIGNAL.price and body["url"]
    assert request.headers["idempotency-key"] == f"{SIGNAL.signal_id}:ch"
    assert request.headers["x-team"] == "desk" and request.headers["content-type"] == "application/json"
    assert request.headers["x-stockstream-timestamp"] == str(int(NOW.timestamp()))
    assert verify_signature("hmac-k3y-for-tests", request.headers["x-stockstream-timestamp"], request.body,
                            request.headers["x-stockstream-signature"], now_s=NOW.timestamp())


@pytest.mark.parametrize(("reply", "error", "reason", "retry_after"), [
    (too_many(3), TransientDeliveryError, "http_429", 3.0),
    (too_many(), TransientDeliveryError, "http_429", None),
    (status(500, "oops"), TransientDeliveryError, "http_500", None),
    (status(503), TransientDeliveryError, "http_503", None),
    (status(400, "bad payload"), PermanentDeliveryError, "http_400", None),
    (status(404), PermanentDeliveryError, "http_404", None),
    (status(410), PermanentDeliveryError, "http_410", None),
    (Reply(drop=True), TransientDeliveryError, "connection_error", None),
])
def test_http_outcomes_are_classified(receiver: HttpReceiver, reply: Reply, error: type, reason: str,
                                      retry_after: float | None) -> None:
    receiver.script("/hook", [reply])
    sender = sender_for({"type": "webhook", "url": receiver.url("/hook")})
    with pytest.raises(error) as raised:
        send_now(sender, NOTE)
    assert raised.value.reason == reason
    if isinstance(raised.value, TransientDeliveryError):
        assert raised.value.retry_after == retry_after


def test_a_timeout_is_transient_and_bounded(receiver: HttpReceiver) -> None:
    receiver.script("/hook", [slow(60)])  # answers only after a minute
    sender = sender_for({"type": "webhook", "url": receiver.url("/hook")}, http_timeout_s=0.3)
    with pytest.raises(TransientDeliveryError) as raised:
        send_now(sender, NOTE)
    # The sender gave up on its own: the receiver had not answered yet (a bound, whatever the machine's speed).
    assert raised.value.reason == "timeout"
    assert [request.answered_status for request in receiver.requests("/hook")] == [None]


def test_slack_incoming_webhook(receiver: HttpReceiver) -> None:
    url = receiver.url("/services/T000/B000/XXXXsecretXXXX")
    sender = sender_for({"type": "slack", "webhook_url_env": "SLACK_URL"}, {"SLACK_URL": url})
    send_now(sender, NOTE)
    [request] = receiver.requests("/services/T000/B000/XXXXsecretXXXX")
    body = request.json()
    assert body["blocks"][0]["text"]["text"] == NOTE.title and NOTE.headline in body["text"]
    receiver.script("/services/T000/B000/XXXXsecretXXXX", [status(404, "channel_not_found")])
    with pytest.raises(PermanentDeliveryError) as raised:
        send_now(sender, NOTE)
    assert raised.value.reason == "http_404" and "XXXXsecretXXXX" not in str(raised.value)


def test_discord_webhook_waits_for_confirmation_and_reads_retry_after_from_the_body(receiver: HttpReceiver) -> None:
    path = "/api/webhooks/123/discord-secret-token"
    sender = sender_for({"type": "discord", "webhook_url_env": "DISCORD_URL"}, {"DISCORD_URL": receiver.url(path)})
    receiver.script(path, [Reply(429, {"message": "You are being rate limited.", "retry_after": 1.25, "global": False},
                                 {"Retry-After": "2"}), ok({"id": "1"})])
    with pytest.raises(TransientDeliveryError) as raised:
        send_now(sender, NOTE)
    assert raised.value.retry_after == 1.25
    send_now(sender, NOTE)
    requests = receiver.requests(path)
    assert len(requests) == 2 and requests[1].query == "wait=true"
    assert requests[1].json()["embeds"][0]["title"] == NOTE.title


def test_telegram_send_message_and_its_errors(receiver: HttpReceiver) -> None:
    path = f"/bot{TOKEN}/sendMessage"
    sender = sender_for({"type": "telegram", "bot_token_env": "TG", "chat_id": "42", "api_base": receiver.url("")},
                        {"TG": TOKEN})
    receiver.script(path, [
        ok({"ok": True, "result": {"message_id": 1}}),
        Reply(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
                    "parameters": {"retry_after": 3}}),
        Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}),
        Reply(502, b"bad gateway"),
    ])
    send_now(sender, NOTE)
    body = receiver.requests(path)[0].json()
    assert body["chat_id"] == "42" and body["parse_mode"] == "HTML" and "BUY BTC-USD" in body["text"]
    with pytest.raises(TransientDeliveryError) as limited:
        send_now(sender, NOTE)
    assert limited.value.retry_after == 3.0 and limited.value.reason == "http_429"
    with pytest.raises(PermanentDeliveryError) as refused:
        send_now(sender, NOTE)
    assert refused.value.reason == "http_400" and "chat not found" in refused.value.detail
    with pytest.raises(TransientDeliveryError) as gateway:
        send_now(sender, NOTE)
    assert gateway.value.reason == "http_502"
    for failure in (limited.value, refused.value, gateway.value):
        assert TOKEN not in str(failure)


def test_mail_over_plain_smtp() -> None:
    with SmtpReceiver() as smtp:
        sender = sender_for({"type": "email", "host": "127.0.0.1", "port": smtp.port, "from": "alerts@example.com",
                             "to": ["alice@example.com", "bob@example.com"]})
        send_now(sender, NOTE)
        [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == ("alice@example.com", "bob@example.com") and not mail.tls and mail.login is None
    assert mail.message["Subject"] == NOTE.title
    assert mail.message["Message-ID"] == f"<{SIGNAL.signal_id}.ch@stockstream.notify>"
    assert NOTE.text in mail.body


def test_mail_with_starttls_and_login(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    with SmtpReceiver(cert=(cert, key), user=("alerts", "smtp-pa55word-for-tests")) as smtp:
        channel = {"type": "email", "host": "127.0.0.1", "port": smtp.port, "starttls": True, "ca_file": str(cert),
                   "username": "alerts", "password_env": "SMTP_PW", "from": "alerts@example.com",
                   "to": ["alice@example.com"]}
        send_now(sender_for(channel, {"SMTP_PW": "smtp-pa55word-for-tests"}), NOTE)
        [mail] = smtp.wait_for(1)
        assert mail.tls and mail.login == "alerts"
        with pytest.raises(PermanentDeliveryError) as refused:
            send_now(sender_for(channel, {"SMTP_PW": "wrong-password"}), NOTE)
        assert refused.value.reason == "smtp_auth"
        untrusted = {**channel, "ca_file": None}
        with pytest.raises(PermanentDeliveryError) as tls:
            send_now(sender_for(untrusted, {"SMTP_PW": "smtp-pa55word-for-tests"}), NOTE)
        assert tls.value.reason == "tls_error"


# The server is insecure on purpose (AUTH without TLS): aiosmtpd warns about exactly that.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_credentials_never_go_to_a_server_that_offers_no_starttls() -> None:
    """A server (or a man in the middle stripping STARTTLS from its answer) that offers AUTH in clear: the
    channel, STARTTLS on by default, refuses (``smtp_unsupported``) before any AUTH; the password never leaves."""
    with SmtpReceiver(user=("alerts", "smtp-pa55word-for-tests")) as smtp:
        channel = {"type": "email", "host": "127.0.0.1", "port": smtp.port, "username": "alerts",
                   "password_env": "SMTP_PW", "from": "alerts@example.com", "to": ["alice@example.com"]}
        with pytest.raises(PermanentDeliveryError) as refused:
            send_now(sender_for(channel, {"SMTP_PW": "smtp-pa55word-for-tests"}), NOTE)
        assert refused.value.reason == "smtp_unsupported"
        assert smtp.logins_tried == [] and smtp.mails == []


def test_mail_to_a_refused_address_is_permanent_and_a_closed_port_transient() -> None:
    with SmtpReceiver(refused={"nobody@example.com"}) as smtp:
        sender = sender_for({"type": "email", "host": "127.0.0.1", "port": smtp.port, "from": "alerts@example.com",
                             "to": ["nobody@example.com"]})
        with pytest.raises(PermanentDeliveryError) as refused:
            send_now(sender, NOTE)
        assert refused.value.reason == "bad_address"
        port = smtp.port
    closed = sender_for({"type": "email", "host": "127.0.0.1", "port": port, "from": "a@example.com",
                         "to": ["b@example.com"]})
    with pytest.raises(TransientDeliveryError) as down:
        send_now(closed, NOTE)
    assert down.value.reason == "connection_error"


@pytest.mark.integration
def test_browser_channel_publishes_the_contract_message(stack, namespace: str) -> None:  # type: ignore[no-untyped-def]
    settings = NotifySettings(redis_url=stack.redis_url, redis_key_prefix=namespace)
    client = redis.Redis.from_url(stack.redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(f"{namespace}live:notifications")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    received: list[dict[str, object]] = []

    def listen() -> None:
        message = pubsub.get_message(timeout=10, ignore_subscribe_messages=True)
        if message is not None:
            received.append(json.loads(message["data"]))

    listener = threading.Thread(target=listen)
    listener.start()
    config = NotifyConfig.model_validate({"channels": {"web": {"type": "browser"}}, "subscriptions": [{"channel": "web"}]})
    sender = build_sender("web", config.channels["web"], {}, settings, now=lambda: NOW)
    send_now(sender, NOTE)
    listener.join(15)
    pubsub.close()
    assert received == [{"signal_id": SIGNAL.signal_id, "title": NOTE.title, "text": NOTE.text, "url": NOTE.url,
                         "signal": json.loads(SIGNAL.model_dump_json())}]
    down = build_sender("web", config.channels["web"], {},
                        NotifySettings(redis_url="redis://127.0.0.1:1/0", http_timeout_s=1), now=lambda: NOW)
    with pytest.raises(TransientDeliveryError):
        send_now(down, NOTE)
