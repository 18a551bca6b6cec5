"""What a person reads when something outside fails: no credential, what failed, what to do (issue 20).

The real console script against closed ports (nothing listens there) and the documented
subscription files; no stack needed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[3]
SECRET = "hunter2-DO-NOT-LEAK"


def stockstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("REDIS_", "KAFKA_", "NOTIFY_", "SLACK_", "DISCORD_", "TELEGRAM_", "SMTP_"))}
    return subprocess.run([STOCKSTREAM, *args], capture_output=True, text=True, timeout=120, check=False,
                          cwd=ROOT, env={**environment, "COLUMNS": "300", **(env or {})})


@pytest.mark.parametrize("command", [["query", "latest", "BTC-USD"], ["views", "compare", "other:"]])
def test_a_redis_password_is_never_printed_and_the_failure_is_said(command: list[str]) -> None:
    port = free_port()  # nobody listens there
    result = stockstream(*command, env={"REDIS_URL": f"redis://:{SECRET}@127.0.0.1:{port}/0"})
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert SECRET not in output
    assert "Traceback" not in output
    assert f"Redis at redis://:***@127.0.0.1:{port}/0 is unreachable: connection refused." in output
    assert "Start it with `stockstream stack up`, or set REDIS_URL." in output


def test_kafka_sasl_credentials_in_the_address_are_never_printed() -> None:
    port = free_port()  # nobody listens there
    result = stockstream("tail", "--limit", "1", env={"KAFKA_BOOTSTRAP_SERVERS": f"u:{SECRET}@127.0.0.1:{port}"})
    assert result.returncode == 1
    output = " ".join((result.stdout + result.stderr).split())  # the sentence, whatever the console width
    assert SECRET not in output
    # librdkafka reads "u:secret@127.0.0.1" as a host name, and says so.
    assert f"Kafka at ***@127.0.0.1:{port} is unreachable: host name not found." in output
    assert "set KAFKA_BOOTSTRAP_SERVERS" in output


def test_an_unreachable_kafka_says_connection_refused() -> None:
    port = free_port()  # nobody listens there
    result = stockstream("tail", "--limit", "1", env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"})
    assert result.returncode == 1
    output = " ".join((result.stdout + result.stderr).split())
    assert f"Kafka at 127.0.0.1:{port} is unreachable: connection refused." in output


def test_missing_secrets_name_the_file_the_channel_and_the_way_out() -> None:
    result = stockstream("notify", "-s", "docs/examples/subscriptions.toml", "--check")
    assert result.returncode == 2
    output = " ".join(result.stderr.split())
    assert "subscription file docs/examples/subscriptions.toml names environment variables that are not set" in output
    assert "- DISCORD_WEBHOOK_URL: channel 'team-discord' (discord), webhook_url_env" in output
    assert "- TELEGRAM_BOT_TOKEN: channel 'alice-telegram' (telegram), bot_token_env" in output
    assert "- SMTP_PASSWORD: channel 'alice-mail' (email), password_env" in output
    assert "--subscriptions docs/examples/subscriptions-console.toml" in output


def test_the_readme_notify_line_works_without_any_secret() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "stockstream notify -s docs/examples/subscriptions-console.toml" in readme
    result = stockstream("notify", "-s", "docs/examples/subscriptions-console.toml", "--check")
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stderr
