"""The local stack's Alertmanager, and the alerting wiring of its Prometheus.

:class:`Alertmanager` runs the Debian ``prometheus-alertmanager`` on loopback with the one routing
file ``ops/alertmanager/alertmanager.yml`` (STACK_ALERTMANAGER_CONFIG), rendered by
:func:`render_alertmanager_config` for this machine: each kind of channel (webhook, Slack, e-mail) is
kept only when its ``ALERT_*`` settings are given (:class:`AlertChannelSettings`), its endpoint set
from them, and its secret written to a 0600 file the config points at — Alertmanager reads secrets
from files, never from the config. With no channel configured, alerts are still routed, grouped and
inhibited, and visible with ``amtool --alertmanager.url=http://127.0.0.1:9095 alert``.

The stack's Prometheus sends its alerts here (:func:`stockstream.stack.services.render_prometheus_config`).
"""

from __future__ import annotations

import copy
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr

from processors.runtime.settings import ServiceSettings, env
from stockstream.stack.services import MissingToolError, StackSettings

BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name first, upstream's second
INSTALL_HINT = "install Alertmanager (apt-get install prometheus-alertmanager)"


class AlertChannelSettings(ServiceSettings):
    """Where the local stack's Alertmanager delivers; a kind of channel is on only when configured.

    Secrets come either from the environment (written by the stack to a 0600 file under its state
    folder) or from a file of yours (``*_FILE``); they never appear in the rendered config.
    """

    webhook_url: str | None = Field(None, validation_alias=env("ALERT_WEBHOOK_URL"))
    webhook_token: SecretStr | None = Field(None, validation_alias=env("ALERT_WEBHOOK_TOKEN"))
    webhook_token_file: Path | None = Field(None, validation_alias=env("ALERT_WEBHOOK_TOKEN_FILE"))
    slack_webhook_url: SecretStr | None = Field(None, validation_alias=env("ALERT_SLACK_WEBHOOK_URL"))
    slack_webhook_url_file: Path | None = Field(None, validation_alias=env("ALERT_SLACK_WEBHOOK_URL_FILE"))
    email_to: str | None = Field(None, validation_alias=env("ALERT_EMAIL_TO"))
    email_from: str = Field("stockstream-alerts@localhost", validation_alias=env("ALERT_EMAIL_FROM"))
    smtp_smarthost: str | None = Field(None, pattern=r"^[^:\s]+:\d+$", validation_alias=env("ALERT_SMTP_SMARTHOST"))
    smtp_username: str | None = Field(None, validation_alias=env("ALERT_SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(None, validation_alias=env("ALERT_SMTP_PASSWORD"))
    smtp_password_file: Path | None = Field(None, validation_alias=env("ALERT_SMTP_PASSWORD_FILE"))
    smtp_require_tls: bool = Field(True, validation_alias=env("ALERT_SMTP_REQUIRE_TLS"))

    def channels(self) -> list[str]:
        """The kinds of channel that are on, for logs and ``stack status``."""
        on = []
        if self.webhook_url:
            on.append("webhook")
        if self.slack_webhook_url or self.slack_webhook_url_file:
            on.append("slack")
        if self.email_to and self.smtp_smarthost:
            on.append("email")
        return on


def _secret_file(secrets_dir: Path, name: str, value: SecretStr | None, given: Path | None,
                 files: dict[Path, str]) -> Path | None:
    """The file holding a secret: the caller's, or one to write from the env value (recorded in ``files``)."""
    if given is not None:
        return given.resolve()
    if value is None:
        return None
    path = secrets_dir / name
    files[path] = value.get_secret_value()
    return path


def render_alertmanager_config(shipped: dict[str, Any], channels: AlertChannelSettings,
                               secrets_dir: Path) -> tuple[dict[str, Any], dict[Path, str]]:
    """The shipped config adapted to ``channels``; returns it and the secret files to write (path → content).

    Routes, grouping, inhibition, repeat intervals and message texts stay as shipped. Pure: the
    caller writes the files (:meth:`Alertmanager.prepare`).
    """
    config = copy.deepcopy(shipped)
    files: dict[Path, str] = {}
    global_ = config.setdefault("global", {})
    token = _secret_file(secrets_dir, "webhook-token", channels.webhook_token, channels.webhook_token_file, files)
    slack = _secret_file(secrets_dir, "slack-webhook-url", channels.slack_webhook_url,
                         channels.slack_webhook_url_file, files)
    smtp_password = _secret_file(secrets_dir, "smtp-password", channels.smtp_password,
                                 channels.smtp_password_file, files)
    email_on = bool(channels.email_to and channels.smtp_smarthost)
    for receiver in config.get("receivers", []):
        if channels.webhook_url and receiver.get("webhook_configs"):
            webhooks = []
            for webhook in receiver["webhook_configs"]:
                webhook = {**webhook, "url": channels.webhook_url}
                if token is None:
                    webhook.pop("http_config", None)
                else:
                    webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": str(token)}}
                webhooks.append(webhook)
            receiver["webhook_configs"] = webhooks
        else:
            receiver.pop("webhook_configs", None)
        if slack is None:
            receiver.pop("slack_configs", None)
        if email_on and receiver.get("email_configs"):
            receiver["email_configs"] = [{**email, "to": channels.email_to} for email in receiver["email_configs"]]
        else:
            receiver.pop("email_configs", None)
    if slack is None:
        global_.pop("slack_api_url_file", None)
    else:
        global_["slack_api_url_file"] = str(slack)
    for key in ("smtp_smarthost", "smtp_from", "smtp_auth_username", "smtp_auth_password_file", "smtp_require_tls"):
        global_.pop(key, None)
    if email_on:
        global_ |= {"smtp_smarthost": channels.smtp_smarthost, "smtp_from": channels.email_from,
                    "smtp_require_tls": channels.smtp_require_tls}
        if channels.smtp_username:
            global_["smtp_auth_username"] = channels.smtp_username
        if smtp_password is not None:
            global_["smtp_auth_password_file"] = str(smtp_password)
    return config, files


def alertmanager_binary() -> str:
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    raise MissingToolError(f"`alertmanager` not found: {INSTALL_HINT}")


@dataclass
class Alertmanager:
    """Alertmanager on loopback, single instance (no cluster port), state under the stack's folder."""

    settings: StackSettings
    name: str = "alertmanager"

    @property
    def home(self) -> Path:
        return self.settings.state_dir / "alertmanager"

    @property
    def config_file(self) -> Path:
        return self.home / "alertmanager.yml"

    def port(self) -> int:
        return self.settings.alertmanager_port

    def prepare(self) -> None:
        alertmanager_binary()
        shipped = yaml.safe_load(self.settings.alertmanager_config.read_text(encoding="utf-8"))
        secrets_dir = self.home / "secrets"
        config, files = render_alertmanager_config(shipped, AlertChannelSettings(), secrets_dir)
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        if files:
            secrets_dir.mkdir(mode=0o700, exist_ok=True)
        for path, content in files.items():
            path.touch(mode=0o600, exist_ok=True)
            path.chmod(0o600)
            path.write_text(content, encoding="utf-8")
        self.config_file.write_text(
            "# Rendered by `stockstream stack up` from " + str(self.settings.alertmanager_config)
            + " (stockstream/stack/alertmanager.py); edit that file, not this one.\n"
            + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")

    def command(self) -> list[str]:
        return [
            alertmanager_binary(),
            f"--config.file={self.config_file}",
            f"--storage.path={self.home / 'data'}",
            f"--web.listen-address={self.settings.host}:{self.settings.alertmanager_port}",
            "--cluster.listen-address=",  # one instance: no gossip port
            "--data.retention=120h",
        ]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.settings.alertmanager_url}/-/ready", timeout=1) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except OSError:
            return False
