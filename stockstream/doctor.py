"""``stockstream doctor``: what is configured, what answers, and the settings in effect.

Called by :mod:`stockstream.commands.doctor`. :func:`run_checks` tries, with short timeouts and
never changing anything: the configured Kafka (a metadata call) and its topics against their
declaration (partitions and config: a warning names a difference and the command that fixes it),
Redis (PING), Prometheus and Alertmanager (``/-/ready``), the strategy file
(``STOCKSTREAM_STRATEGY``) and the subscription file (``NOTIFY_SUBSCRIPTIONS``, with the
environment variables it names), and that every service's settings are valid. A check is ``ok``,
``failed`` (a service would not start or work: exit 1), ``warning`` (the pipeline still runs:
monitoring is not reachable, a topic differs from its declaration) or ``skipped`` (not configured).
Every failure says what failed in words and what to do.

:func:`settings_in_effect` lists every environment variable the services read, its value — secrets
as ``***``, addresses with their credentials masked — where it came from (environment, ``.env``,
default) and which services read it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError

from processors.runtime.masking import failure_reason, mask_url, mask_urls, unreachable
from processors.runtime.settings import KafkaSettings, RedisSettings, ServiceSettings, env

OK, FAILED, WARNING, SKIPPED = "ok", "failed", "warning", "skipped"
TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, its status, what was seen, and what to do about a problem."""

    name: str
    status: str
    detail: str
    hint: str = ""


@dataclass(frozen=True)
class Setting:
    """One environment variable: its value (masked), where it came from, which services read it."""

    name: str
    value: str
    source: str
    services: tuple[str, ...]


class DoctorSettings(ServiceSettings):
    """Addresses only the doctor needs: where Prometheus and Alertmanager are (default: the local stack's)."""

    prometheus_url: str | None = Field(None, validation_alias=env("PROMETHEUS_URL"))
    alertmanager_url: str | None = Field(None, validation_alias=env("ALERTMANAGER_URL"))


def _settings_classes() -> dict[str, type[ServiceSettings]]:
    """Every service's settings class, by the command that reads it."""
    from processors.ingest.settings import IngestSettings
    from processors.materialize.settings import MaterializeSettings
    from processors.notify.settings import NotifySettings
    from processors.stream.settings import ProcessSettings
    from spark_jobs.settings import SparkJobSettings
    from stockstream.api.settings import ApiSettings
    from stockstream.stack.services import StackSettings

    return {"ingest": IngestSettings, "process": ProcessSettings, "materialize": MaterializeSettings,
            "notify": NotifySettings, "serve": ApiSettings, "backfill": SparkJobSettings, "stack": StackSettings,
            "doctor": DoctorSettings}


def _error_text(error: ValidationError, cls: type[ServiceSettings]) -> str:
    """The problems of settings read from the environment, in words (locations are env var names)."""
    from processors.core.config_errors import problems_from_validation

    return mask_urls("; ".join(str(problem) for problem in problems_from_validation(error, None, cls)))


def _env_name(info: Any, field: str) -> str:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices) and alias.choices and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return alias if isinstance(alias, str) else field.upper()


def _shown(value: object) -> str:
    if isinstance(value, SecretStr):
        return "***" if value.get_secret_value() else "(empty)"
    if value is None:
        return "(not set)"
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return mask_url(str(value))


def _dotenv_names() -> set[str]:
    path = Path(".env")
    if not path.is_file():
        return set()
    names = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key = line.split("=", 1)[0].strip().removeprefix("export ").strip()
        if key and not key.startswith("#") and "=" in line:
            names.add(key)
    return names


def _instances() -> tuple[dict[str, ServiceSettings], list[Check]]:
    instances: dict[str, ServiceSettings] = {}
    checks: list[Check] = []
    for service, cls in _settings_classes().items():
        try:
            instances[service] = cls()
        except ValidationError as error:
            checks.append(Check(f"settings of {service}", FAILED, _error_text(error, cls),
                                "fix the environment variables named above (stockstream doctor lists them)"))
    if not checks:
        checks.append(Check("settings", OK, f"the settings of {len(instances)} commands are valid"))
    return instances, checks


def settings_in_effect(instances: dict[str, ServiceSettings]) -> list[Setting]:
    """Every env var of every service's settings, masked, with its source and readers (sorted by name)."""
    environment, dotenv = os.environ, _dotenv_names()
    values: dict[str, dict[str, str]] = {}
    for service, instance in instances.items():
        for field, info in type(instance).model_fields.items():
            name = _env_name(info, field)
            values.setdefault(name, {})[service] = _shown(getattr(instance, field))
    found = []
    for name in sorted(values):
        by_service = values[name]
        distinct = sorted(set(by_service.values()))
        shown = distinct[0] if len(distinct) == 1 else "; ".join(
            f"{service}: {value}" for service, value in by_service.items())
        source = "environment" if name in environment else ".env" if name in dotenv else "default"
        found.append(Setting(name, shown, source, tuple(by_service)))
    return found


def _kafka() -> Check:
    from processors.runtime.kafka_admin import KafkaUnavailableError, count_brokers

    settings = KafkaSettings()
    try:
        brokers = count_brokers(settings, timeout_s=5.0)
    except KafkaUnavailableError as error:
        message = str(error)
        sentence, _, advice = message.partition(". ")
        return Check("kafka", FAILED, sentence, advice.rstrip("."))
    return Check("kafka", OK, f"{mask_url(settings.bootstrap_servers)}: {brokers} broker(s) answer")


def _topics() -> Check:
    """The deployment's existing topics against their declaration (schemas/topics.py): partitions and config.

    Topics are created with the declared config and never changed afterwards (``ensure_topics``), so a
    topic created by an older release, or by hand, keeps what it was given: a warning naming the
    difference and the command that fixes it. Topics not created yet are the services' to create.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource

    from processors.runtime.kafka_admin import admin_client

    settings = KafkaSettings()
    specs = settings.topics().all()
    client = admin_client(settings)
    try:
        existing = client.list_topics(timeout=TIMEOUT_S + 2).topics
        present = [spec for spec in specs if spec.name in existing]
        if not present:
            return Check("topics", SKIPPED, f"none of the {len(specs)} topics exists yet: the services create them"
                                            " at start")
        futures = client.describe_configs([ConfigResource("topic", spec.name) for spec in present])
        configs = {resource.name: future.result(timeout=10) for resource, future in futures.items()}
    except (KafkaException, TimeoutError) as error:
        return Check("topics", WARNING, f"could not read the topics' config: {failure_reason(error)}",
                     "the user in KAFKA_SASL_USERNAME needs DESCRIBE_CONFIGS on the topics to check them")
    drift: list[str] = []
    commands: list[str] = []
    for spec in present:
        partitions = len(existing[spec.name].partitions)
        if partitions != spec.partitions:
            drift.append(f"{spec.name} has {partitions} partition(s), declared {spec.partitions}")
        entries = configs[spec.name]
        for key, declared in spec.config().items():
            entry = entries.get(key)
            actual = None if entry is None else entry.value
            if actual != declared:
                drift.append(f"{spec.name} {key}={actual} (declared {declared})")
                commands.append(f"kafka-configs.sh --bootstrap-server … --alter --entity-type topics --entity-name"
                                f" {spec.name} --add-config {key}={declared}")
    if not drift:
        return Check("topics", OK, f"{len(present)} of {len(specs)} topics exist, each with its declared partitions"
                                   " and config")
    if not commands:  # partition counts only
        return Check("topics", WARNING, "; ".join(drift), "stockstream never changes a topic's partition count (keys"
                     " would move to other partitions): set STOCKSTREAM_PARTITIONS to the topics' count")
    more = f" (and {len(commands) - 3} more)" if len(commands) > 3 else ""
    return Check("topics", WARNING, "; ".join(drift), "; ".join(commands[:3]) + more)


def _redis() -> Check:
    import redis

    from processors.materialize.settings import redis_client

    settings = RedisSettings()
    client = redis_client(settings, TIMEOUT_S)
    try:
        version = client.info("server").get("redis_version", "?")
    except (redis.RedisError, OSError) as error:
        message = unreachable("Redis", settings.redis_url, error, setting="REDIS_URL")
        sentence, _, advice = message.partition(". ")
        return Check("redis", FAILED, sentence, advice.rstrip("."))
    finally:
        client.close()
    return Check("redis", OK, f"{mask_url(settings.redis_url)}: Redis {version} answers")


def _http_ready(name: str, url: str, setting: str) -> Check:
    import httpx

    ready = url.rstrip("/") + "/-/ready"
    try:
        response = httpx.get(ready, timeout=TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as error:
        return Check(name, WARNING, f"{name.capitalize()} at {mask_url(url)} is unreachable: {failure_reason(error)}",
                     f"monitoring only (the pipeline runs without it): start it with `stockstream stack up`,"
                     f" or set {setting}")
    if response.status_code != 200:
        return Check(name, WARNING, f"{mask_url(ready)} answered HTTP {response.status_code}",
                     f"is {setting} the address of {name.capitalize()}?")
    return Check(name, OK, f"{mask_url(url)}: ready")


def _monitoring(doctor: DoctorSettings) -> list[Check]:
    from stockstream.stack.services import StackSettings

    stack = StackSettings()
    prometheus = doctor.prometheus_url or stack.prometheus_url
    alertmanager = doctor.alertmanager_url or getattr(stack, "alertmanager_url", f"http://{stack.host}:9095")
    return [_http_ready("prometheus", prometheus, "PROMETHEUS_URL"),
            _http_ready("alertmanager", alertmanager, "ALERTMANAGER_URL")]


def _strategy(path: Path | None) -> Check:
    from processors.core.strategy import StrategyError, load_strategy

    if path is None:
        return Check("strategy file", SKIPPED, "STOCKSTREAM_STRATEGY is not set: the default strategy (docs/core.md)")
    try:
        strategy = load_strategy(path)
    except StrategyError as error:
        return Check("strategy file", FAILED, str(error), "fix the file (or unset STOCKSTREAM_STRATEGY)")
    overrides = f", overrides for {', '.join(strategy.symbols)}" if strategy.symbols else ""
    return Check("strategy file", OK, f"{path}: strategy {strategy.name!r}{overrides}")


def _subscriptions(path: Path | None) -> Check:
    from processors.notify.subscriptions import SubscriptionConfigError, load_config, resolve_secrets

    if path is None:
        return Check("subscription file", SKIPPED, "NOTIFY_SUBSCRIPTIONS is not set: notify prints every signal on"
                                                   " the console")
    try:
        config = load_config(path)
        resolve_secrets(config, os.environ, path)
    except SubscriptionConfigError as error:
        return Check("subscription file", FAILED, str(error), "fix the file or set the variables it names")
    return Check("subscription file", OK, f"{path}: {len(config.channels)} channel(s),"
                                          f" {len(config.subscriptions)} subscription(s)")


def run_checks() -> tuple[list[Check], list[Setting]]:
    """Every check (see the module docstring) and the settings in effect; never raises for a finding."""
    instances, checks = _instances()
    probes: list[Callable[[], Check | list[Check]]] = [
        lambda: [kafka, _topics()] if (kafka := _kafka()).status == OK else kafka, _redis]
    process, notify = instances.get("process"), instances.get("notify")
    probes.append(lambda: _monitoring(instances.get("doctor") or DoctorSettings.model_construct()))
    probes.append(lambda: _strategy(getattr(process, "strategy_file", None) if process else
                                    _raw_path("STOCKSTREAM_STRATEGY")))
    probes.append(lambda: _subscriptions(getattr(notify, "subscriptions_file", None) if notify else
                                         _raw_path("NOTIFY_SUBSCRIPTIONS")))
    for probe in probes:
        found = probe()
        checks += found if isinstance(found, list) else [found]
    return checks, settings_in_effect(instances)


def _raw_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def healthy(checks: list[Check]) -> bool:
    """No check failed (warnings and skipped checks do not count)."""
    return all(check.status != FAILED for check in checks)


def as_json(checks: list[Check], settings: list[Setting]) -> dict[str, Any]:
    return {"ok": healthy(checks), "checks": [asdict(check) for check in checks],
            "settings": [{**asdict(setting), "services": list(setting.services)} for setting in settings]}
