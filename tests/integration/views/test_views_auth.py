"""Redis AUTH (password and ACL users) and TLS, against real redis-server processes started by the test.

The materializer writes with a password; the API reads with an ACL user that may only read
(and subscribe), which also proves the API never writes; a wrong password is retried, counted
and never crashes the service; the secrets appear in no log line and no metric.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry

from processors.materialize.service import Materializer
from processors.materialize.settings import MaterializeSettings
from processors.runtime.kafka_admin import ensure_topics
from stockstream.api.app import create_app
from stockstream.api.settings import ApiSettings
from tests.integration.views.streams import make_stream, produce_stream
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "adm-7f3c9e1b-secret"  # noqa: S105 - test-only credentials
WRITER_PASSWORD = "wrt-5d2a8c4e-secret"  # noqa: S105
READER_PASSWORD = "rdr-9b1e6f0a-secret"  # noqa: S105


@contextmanager
def redis_server(folder: Path, *args: str) -> Iterator[int]:
    """A throwaway redis-server on a free port with the given extra arguments; stopped afterwards."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    tls = "--tls-port" in args
    command = ["redis-server", "--bind", "127.0.0.1", "--dir", str(folder), "--save", "", "--appendonly", "no",
               *(["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)]),
               *[a for a in args if a != "--tls-port"]]
    log = (folder / "redis.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: b"Ready to accept connections" in (folder / "redis.log").read_bytes(), timeout_s=120,
                   message="redis-server to start")
        yield port
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def run_materializer(settings: MaterializeSettings, until, message: str) -> Materializer:
    stop = threading.Event()
    materializer = Materializer(settings, stop=stop)
    thread = threading.Thread(target=materializer.run, daemon=True)
    thread.start()
    try:
        wait_until(until, timeout_s=60, message=message)
    finally:
        stop.set()
        thread.join(30)
    return materializer


@pytest.fixture
def acl_redis(tmp_path) -> Iterator[int]:
    with redis_server(tmp_path / "acl", "--requirepass", ADMIN_PASSWORD,
                      "--user", "writer", "on", f">{WRITER_PASSWORD}", "~*", "&*", "+@all",
                      "--user", "reader", "on", f">{READER_PASSWORD}", "~*", "&*", "+@read", "+@connection",
                      "+subscribe", "+ping") as port:
        yield port


def test_password_and_acl_users_work_and_secrets_stay_out_of_logs_and_metrics(
        stack, namespace, acl_redis, caplog, topics_cleanup):
    url = f"redis://127.0.0.1:{acl_redis}/0"
    settings = MaterializeSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace, redis_url=url,
                                   redis_username="writer", redis_password=WRITER_PASSWORD,
                                   redis_key_prefix=namespace, metrics_port=0, batch_timeout_s=0.05)
    settings.register_secrets()
    ensure_topics(settings, settings.topics().all())
    stream = make_stream(count=60, seed=2)
    produce_stream(stack.kafka_bootstrap, settings.topics(), stream)
    admin = redis.Redis.from_url(url, password=ADMIN_PASSWORD)
    caplog.set_level(logging.INFO)

    run_materializer(settings, lambda: admin.zcard(f"{namespace}ind:BTC-USD@test:tick") == 60, "views via ACL writer")

    api = ApiSettings(bootstrap_servers=stack.kafka_bootstrap, redis_url=url, redis_username="reader",
                      redis_password=READER_PASSWORD, redis_key_prefix=namespace)
    api.register_secrets()
    with TestClient(create_app(api)) as client:
        latest = client.get("/symbols/BTC-USD/latest")
        assert latest.status_code == 200
        assert latest.json()["tick"]["source_id"] == stream.ticks[-1].source_id
        assert client.get("/health").json()["redis"] is True
    # The reader really is read-only: the API works without any write permission.
    reader = redis.Redis.from_url(url, username="reader", password=READER_PASSWORD)
    with pytest.raises(redis.exceptions.NoPermissionError):
        reader.set(f"{namespace}probe", "1")

    exposed = generate_latest(REGISTRY).decode()
    for secret in (WRITER_PASSWORD, READER_PASSWORD, ADMIN_PASSWORD):
        assert secret not in caplog.text
        assert secret not in exposed
    admin.close()
    reader.close()


def test_a_wrong_password_is_retried_and_counted_never_fatal(stack, namespace, acl_redis, caplog, topics_cleanup):
    wrong = "wrong-4e8d1c-password"  # noqa: S105
    settings = MaterializeSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace,
                                   redis_url=f"redis://127.0.0.1:{acl_redis}/0", redis_username="writer",
                                   redis_password=wrong, redis_key_prefix=namespace, metrics_port=0,
                                   batch_timeout_s=0.05, retry_max_backoff_s=0.2)
    settings.register_secrets()
    ensure_topics(settings, settings.topics().all())
    produce_stream(stack.kafka_bootstrap, settings.topics(), make_stream(count=10, seed=4))
    before = REGISTRY.get_sample_value("stockstream_materialize_redis_errors_total") or 0
    caplog.set_level(logging.WARNING)
    run_materializer(settings,
                     lambda: (REGISTRY.get_sample_value("stockstream_materialize_redis_errors_total") or 0) >= before + 3,
                     "three failed attempts")
    assert "AuthenticationError" in caplog.text or "WRONGPASS" in caplog.text
    assert wrong not in caplog.text


def test_tls_with_a_private_ca(stack, namespace, tmp_path, topics_cleanup):
    certs = tmp_path / "certs"
    certs.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=certs, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=stockstream test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
    (certs / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "1", "-extfile", "san.ext")
    with redis_server(tmp_path / "tls", "--tls-port", "--tls-cert-file", str(certs / "server.pem"),
                      "--tls-key-file", str(certs / "server.key"), "--tls-ca-cert-file", str(certs / "ca.pem"),
                      "--tls-auth-clients", "no", "--requirepass", ADMIN_PASSWORD) as port:
        settings = MaterializeSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace,
                                       redis_url=f"redis://127.0.0.1:{port}/0", redis_password=ADMIN_PASSWORD,
                                       redis_tls=True, redis_tls_ca_file=str(certs / "ca.pem"),
                                       redis_key_prefix=namespace, metrics_port=0, batch_timeout_s=0.05)
        ensure_topics(settings, settings.topics().all())
        produce_stream(stack.kafka_bootstrap, settings.topics(), make_stream(count=30, seed=6))
        check = redis.Redis.from_url(f"rediss://127.0.0.1:{port}/0", password=ADMIN_PASSWORD,
                                     ssl_ca_certs=str(certs / "ca.pem"))
        run_materializer(settings, lambda: check.zcard(f"{namespace}ind:BTC-USD@test:tick") == 30, "views over TLS")
        # Plain TCP to the TLS port does not work: the data really went over TLS.
        with pytest.raises(redis.RedisError):
            redis.Redis(port=port, password=ADMIN_PASSWORD, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)).ping()
        check.close()
