"""The notifier is not a proxy: SSRF attempts refused with a dead-letter reason, on real sockets.

Senders against real local servers (an HTTPS receiver with its own certificate), with the
egress guard's resolver injected so that a public-looking DNS name can resolve to 127.0.0.1
without touching /etc/hosts; then the ``stockstream notify`` service, whose channels point at
loopback, 10/8, the cloud metadata address, ``localhost`` (a DNS name that the system resolver
maps to 127.0.0.1) and a plain-http URL: every signal is dead-lettered with its reason and no
request reaches the local receiver.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from processors.notify.channels import build_sender
from processors.notify.channels.egress import GuardedConnector
from processors.notify.notification import render
from processors.notify.retry import PermanentDeliveryError, TransientDeliveryError
from processors.notify.settings import NotifySettings
from processors.notify.subscriptions import NotifyConfig
from schemas.events import DeadLetter
from tests.integration.notify.conftest import NotifyBench
from tests.support.fake_receivers.http import HttpReceiver, status
from tests.support.fake_receivers.smtp import self_signed_cert
from tests.support.kafka_tools import read_topic, wait_until
from tests.support.processes import ServiceProcess
from tests.support.senders import send_now
from tests.unit.notify.factories import make_signal

pytestmark = pytest.mark.integration

NOW = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
NOTE = render(make_signal(ts_event=datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)), None)
NAME = "hooks.partner.example"  # a public-looking name; the injected resolver decides where it points


class Resolver:
    """An injected resolver: ``name → addresses``, recording every lookup."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return list(self.answers.get(host, [host]))


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[HttpReceiver, Path]]:
    cert, key = self_signed_cert(tmp_path, hostname=NAME)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with HttpReceiver(tls=context) as receiver:
        yield receiver, cert


def sender(channel: dict[str, object], resolver: Resolver, secrets: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    config = NotifyConfig.model_validate({"channels": {"ch": channel}, "subscriptions": [{"channel": "ch"}]})
    return build_sender("ch", config.channels["ch"], {k: SecretStr(v) for k, v in (secrets or {}).items()},
                        NotifySettings(http_timeout_s=5.0), now=lambda: NOW, resolve=resolver)


@pytest.mark.parametrize(("url", "answers"), [
    ("https://127.0.0.1:{port}/hook", {}),
    ("https://[::1]:{port}/hook", {}),
    ("https://10.0.0.1/hook", {}),
    ("https://169.254.169.254/latest/meta-data/", {}),
    (f"https://{NAME}:{{port}}/hook", {NAME: ["127.0.0.1"]}),  # a DNS name resolving to loopback
    (f"https://{NAME}:{{port}}/hook", {NAME: ["93.184.216.34", "10.1.2.3"]}),  # one private answer is enough
    (f"https://{NAME}/hook", {NAME: ["::ffff:169.254.169.254"]}),
])
def test_webhook_to_a_private_address_is_refused_before_connecting(tls_receiver, url: str,
                                                                   answers: dict[str, list[str]]) -> None:
    receiver, _cert = tls_receiver
    resolver = Resolver(answers)
    hook = sender({"type": "webhook", "url": url.format(port=receiver.port)}, resolver)
    with pytest.raises(PermanentDeliveryError) as raised:
        send_now(hook, NOTE)
    assert raised.value.reason == "blocked_address"
    assert "allow_private_network" in raised.value.detail
    assert receiver.requests() == []


@pytest.mark.parametrize("kind", ["slack", "discord"])
def test_slack_and_discord_urls_from_secrets_are_guarded_too(tls_receiver, kind: str) -> None:
    receiver, _cert = tls_receiver
    secret_url = f"https://{NAME}:{receiver.port}/services/T0/B0/secret"
    hook = sender({"type": kind, "webhook_url_env": "HOOK_URL"}, Resolver({NAME: ["127.0.0.1"]}),
                  {"HOOK_URL": secret_url})
    with pytest.raises(PermanentDeliveryError) as raised:
        send_now(hook, NOTE)
    assert raised.value.reason == "blocked_address" and "secret" not in raised.value.detail
    assert receiver.requests() == []
    plain = sender({"type": kind, "webhook_url_env": "HOOK_URL"}, Resolver({}), {"HOOK_URL": "http://hooks.example/x"})
    with pytest.raises(PermanentDeliveryError) as raised:
        send_now(plain, NOTE)
    assert raised.value.reason == "insecure_url"


def test_allowed_private_network_connects_to_the_checked_address_and_verifies_tls_by_name(tls_receiver) -> None:
    receiver, cert = tls_receiver
    resolver = Resolver({NAME: ["127.0.0.1"]})
    config = NotifyConfig.model_validate({"channels": {"ch": {
        "type": "webhook", "url": f"https://{NAME}:{receiver.port}/hook", "allow_private_network": True}},
        "subscriptions": [{"channel": "ch"}]})
    from processors.notify.channels.http import HttpClient
    from processors.notify.channels.webhook import WebhookSender

    verify = ssl.create_default_context(cafile=str(cert))
    assert config.channels["ch"].allow_private_network  # type: ignore[union-attr]
    hook = WebhookSender("ch", f"https://{NAME}:{receiver.port}/hook",
                         HttpClient(5.0, allow_private_network=True, resolve=resolver, verify=verify), now=lambda: NOW)
    send_now(hook, NOTE)
    [request] = receiver.requests("/hook")
    assert request.headers["host"] == f"{NAME}:{receiver.port}"  # the URL's name, sent to the checked address
    assert resolver.lookups == [NAME]  # resolved once, for the one connection
    # The certificate is checked against the name, not the address connected to: a name the
    # certificate does not carry fails TLS even though it resolves to the same address.
    other = WebhookSender("ch", f"https://other.example:{receiver.port}/hook", HttpClient(
        5.0, allow_private_network=True, resolve=Resolver({"other.example": ["127.0.0.1"]}), verify=verify),
        now=lambda: NOW)
    with pytest.raises(TransientDeliveryError):
        send_now(other, NOTE)
    assert len(receiver.requests("/hook")) == 1


def test_no_second_lookup_between_the_check_and_the_connection() -> None:
    """DNS rebinding: a resolver that answers public first and loopback after. The guard connects to
    the very addresses it checked, from one lookup; the loopback answer is never used."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    lookups: list[str] = []
    connected: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers)

    async def recording(host: str, port: int, **_: object) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        connected.append(host)
        raise ConnectionRefusedError("no route in this test")

    connector = GuardedConnector(False, rebinding, connect=recording)
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(connector.open("rebind.example", 443, None))
    assert lookups == ["rebind.example"] and connected == ["93.184.216.34"]
    with pytest.raises(PermanentDeliveryError):
        asyncio.run(connector.open("rebind.example", 443, None))  # the next connection's own lookup is checked again
    assert connected == ["93.184.216.34"]


def test_kept_alive_connections_are_reused_and_every_new_connection_is_checked_again(tls_receiver) -> None:
    """The keep-alive pool: posts reuse one checked connection (one lookup); once the receiver closes
    it, the next post opens a new connection through the guard, whose fresh lookup is checked again."""
    receiver, cert = tls_receiver
    from processors.notify.channels.http import HttpClient
    from processors.notify.channels.webhook import WebhookSender

    resolver = Resolver({NAME: ["93.184.216.34"]})  # a public address...
    connected: list[str] = []

    async def to_the_receiver(host: str, port: int, **tls: object) -> tuple[asyncio.StreamReader,
                                                                            asyncio.StreamWriter]:
        connected.append(host)  # ...that this test routes to the local receiver
        return await asyncio.open_connection("127.0.0.1", receiver.port, **tls)  # type: ignore[arg-type]

    hook = WebhookSender("ch", f"https://{NAME}/hook", HttpClient(
        5.0, resolve=resolver, connect=to_the_receiver, verify=ssl.create_default_context(cafile=str(cert))),
        now=lambda: NOW)
    for _ in range(3):
        send_now(hook, NOTE)
    assert len(receiver.answered("/hook")) == 3
    assert resolver.lookups == [NAME] and connected == ["93.184.216.34"]  # one connection, kept alive
    receiver.script("/hook", [status(200, Connection="close")])
    send_now(hook, NOTE)  # answered, and the receiver closes the connection
    resolver.answers[NAME] = ["10.0.0.7"]  # the name now points inside the network
    with pytest.raises(PermanentDeliveryError) as raised:
        send_now(hook, NOTE)
    assert raised.value.reason == "blocked_address"
    assert resolver.lookups == [NAME, NAME] and connected == ["93.184.216.34"]
    assert len(receiver.requests("/hook")) == 4


def test_secret_headers_are_sent_from_the_environment(tls_receiver) -> None:
    receiver, cert = tls_receiver
    from processors.notify.channels.http import HttpClient
    from processors.notify.channels.webhook import WebhookSender

    config = NotifyConfig.model_validate({"channels": {"ch": {
        "type": "webhook", "url": f"https://{NAME}/hook", "headers": {"X-Team": "desk"},
        "headers_env": {"Authorization": "HOOK_AUTH"}}}, "subscriptions": [{"channel": "ch"}]})
    built = build_sender("ch", config.channels["ch"], {"HOOK_AUTH": SecretStr("Bearer s3cr3t-hdr")},
                         NotifySettings(), now=lambda: NOW)
    assert isinstance(built, WebhookSender)
    hook = WebhookSender("ch", f"https://{NAME}:{receiver.port}/hook", HttpClient(
        5.0, allow_private_network=True, resolve=Resolver({NAME: ["127.0.0.1"]}),
        verify=ssl.create_default_context(cafile=str(cert))), headers=built._headers, now=lambda: NOW)
    send_now(hook, NOTE)
    [request] = receiver.requests("/hook")
    assert request.headers["authorization"] == "Bearer s3cr3t-hdr" and request.headers["x-team"] == "desk"


def test_the_notifier_dead_letters_ssrf_attempts_with_a_reason(bench: NotifyBench, tmp_path: Path) -> None:
    with HttpReceiver() as local:
        port = local.port
        channels = {
            "loopback": f"https://127.0.0.1:{port}/hook",
            "ten": "https://10.0.0.1/hook",
            "metadata": "https://169.254.169.254/latest/meta-data/iam/",
            "localname": f"https://localhost:{port}/hook",  # a DNS name resolving to 127.0.0.1
        }
        lines = [f'[channels.{name}]\ntype = "webhook"\nurl = "{url}"\n' for name, url in channels.items()]
        lines.append('[channels.plain]\ntype = "webhook"\nurl_env = "PLAIN_URL"\n')
        lines += [f'[[subscriptions]]\nchannel = "{name}"\ncooldown = 0\n' for name in [*channels, "plain"]]
        subscriptions = tmp_path / "subs.toml"
        subscriptions.write_text("\n".join(lines))
        signal = make_signal(ts_event=datetime.now(UTC) - timedelta(seconds=5))
        bench.produce([signal])
        service = ServiceProcess(["notify"], {**bench.env, "NOTIFY_SUBSCRIPTIONS": str(subscriptions),
                                              "PLAIN_URL": f"http://127.0.0.1:{port}/hook"})
        try:
            def letters() -> dict[str, DeadLetter]:
                return {DeadLetter.model_validate_json(record.value).source: DeadLetter.model_validate_json(record.value)
                        for record in read_topic(bench.bootstrap, bench.dlq_topic, idle_s=0.5)}

            wait_until(lambda: len(letters()) == 5, timeout_s=120,
                       message=f"five dead letters; notifier log:\n{service.output[-3000:]}")
        finally:
            service.terminate(20)
        found = letters()
        for name in channels:
            assert found[f"notify:{name}"].reason == "blocked_address", (name, found[f"notify:{name}"])
        assert "169.254.169.254" in found["notify:metadata"].detail
        assert found["notify:plain"].reason == "insecure_url"
        assert local.requests() == []
