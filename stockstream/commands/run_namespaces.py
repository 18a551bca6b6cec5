"""What a run owns and how it goes: the namespace deletion behind ``runs drop`` and ``runs prune``.

Called by :mod:`stockstream.commands.runs` (``drop``, ``prune``, and ``start``, which prunes first).
A run owns its topics ``<prefix>runs.<id>.*``, its processing state's ``changelog__<prefix>runs.<id>.*``
and the Redis keys of its views ``<REDIS_KEY_PREFIX>run:<id>:*`` (docs/runs.md); every name deleted
starts with one of those prefixes, which hold the run's (pattern-checked) id, so nothing live ever
matches. Which runs are past ``RUN_RETENTION``: :mod:`processors.core.retention`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stockstream.console import console

if TYPE_CHECKING:
    from processors.runtime.runs import RunLog
    from processors.stream.settings import ProcessSettings
    from schemas.runs import Run


def owned_by(settings: ProcessSettings, kafka: Any, run_id: str) -> tuple[list[str], list[bytes]]:
    """What a run owns: its topics (``<prefix>runs.<id>.``, its state's ``changelog__<prefix>runs.<id>.``)
    and the Redis keys of its views (``<REDIS_KEY_PREFIX>run:<id>:``). Never a live name: the prefixes hold the id."""
    from processors.materialize.settings import MaterializeSettings, redis_client
    from schemas.topics import run_topic_prefix

    prefix = run_topic_prefix(settings.topic_prefix, run_id)
    names = sorted(name for name in kafka.consumer.list_topics(timeout=30).topics
                   if name.startswith(prefix) or name.startswith(f"changelog__{prefix}"))
    views = MaterializeSettings(run_id=run_id)
    client = redis_client(views)
    try:
        keys = list(client.scan_iter(match=f"{views.view_prefix}*", count=1000))
    finally:
        client.close()
    return names, keys


def delete_namespace(kafka: Any, run_id: str, names: list[str], keys: list[bytes]) -> None:
    from processors.materialize.settings import MaterializeSettings, redis_client

    kafka.delete_topics(names)
    client = redis_client(MaterializeSettings(run_id=run_id))
    try:
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
    finally:
        client.close()


def due_runs(settings: ProcessSettings, log: RunLog, kafka: Any, now: datetime) -> list[tuple[Run, str]]:
    """The runs to prune now, with why (processors/core/retention.py); a run whose group cannot be
    described counts as active (kept)."""
    from confluent_kafka import KafkaException

    from processors.core.retention import prune_reason

    retention = timedelta(milliseconds=settings.topics().run_retention_ms)
    due = []
    for record in sorted(log.read().runs.values(), key=lambda r: r.run.ts_init):
        run = record.run
        active = False
        if run.state == "running" and run.expires_at is None and run.group:
            try:
                active = kafka.members(run.group) > 0
            except KafkaException:
                active = True
        reason = prune_reason(run, now, retention, group_active=active)
        if reason is not None:
            due.append((run, reason))
    return due


def prune_runs(settings: ProcessSettings, log: RunLog, kafka: Any, due: list[tuple[Run, str]]) -> list[dict[str, Any]]:
    done = []
    for run, reason in due:
        names, keys = owned_by(settings, kafka, run.run_id)
        delete_namespace(kafka, run.run_id, names, keys)
        log.remove(run.run_id)
        done.append({"run_id": run.run_id, "reason": reason, "topics": len(names), "keys": len(keys)})
    return done


def prune_quietly(settings: ProcessSettings, log: RunLog) -> None:
    """Before a run starts: the runs past their retention go (a failure only warns; the run goes on)."""
    from confluent_kafka import KafkaException
    from redis import RedisError

    from processors.runtime.runs import RunLogError
    from stockstream.replayer import Kafka

    err = console(stderr=True)
    kafka = Kafka(settings)
    try:
        for item in prune_runs(settings, log, kafka, due_runs(settings, log, kafka, datetime.now(UTC))):
            err.print(f"pruned run {item['run_id']} ({item['reason']}): {item['topics']} topics, "
                      f"{item['keys']} Redis keys", markup=False)
    except (KafkaException, RedisError, RunLogError) as error:
        err.print(f"warning: expired runs not pruned now ({error}); `stockstream runs prune` retries", markup=False)
    finally:
        kafka.close()
