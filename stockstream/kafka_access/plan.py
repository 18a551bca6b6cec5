"""Who may do what on Kafka: one principal per service, each allowed only its own topics and groups.

The plan is data (:class:`Grant` values) computed from a :class:`Deployment` (the topic registry
and the consumer group names the services of one deployment use), so the same definition serves
the local stack (``stockstream stack up``), any cluster through its operator
(``stockstream kafka-access apply``; the manifests do not run it yet), and the tests (every namespace is a deployment of its own).
Nothing here talks to Kafka: :mod:`stockstream.kafka_access.admin` turns grants into ACLs.

Rules of thumb the grants follow:

- a writer may WRITE only the topics it produces, a reader may READ only those it consumes;
- CREATE where a service creates its own topics at start (``ensure_topics``, Quix's changelog and
  repartition topics), DESCRIBE/DESCRIBE_CONFIGS where it looks them up (Quix checks configs);
- consumer groups, transactional ids and internal topics (``changelog__<group>--…``) are the
  service's own, by literal name or by a prefix that begins with its group;
- nobody deletes a topic but ``prune``, and only a run's (``runs.`` and ``changelog__runs.`` names);
- ``operator`` (people, ``replay``, the test harness) is a super user and needs no grant (so is the
  local stack's loopback PLAINTEXT listener, see :mod:`stockstream.stack.kafka_security`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # imported where used: ``stockstream kafka-access``'s help needs the names below, not the schemas
    from schemas.topics import TopicRegistry

INGEST, PROCESS, MATERIALIZE, NOTIFY, COMPOSITE, SERVE, SPARK, PRUNE = (
    "ingest", "process", "materialize", "notify", "composite", "serve", "spark", "prune")
OPERATOR = "operator"
SERVICE_PRINCIPALS: tuple[str, ...] = (INGEST, PROCESS, MATERIALIZE, NOTIFY, COMPOSITE, SERVE, SPARK, PRUNE)
SCRAM_PRINCIPALS: tuple[str, ...] = (*SERVICE_PRINCIPALS, OPERATOR)
SUPER_USERS: tuple[str, ...] = (OPERATOR,)

# The ``stockstream`` subcommand (its words, e.g. ``runs prune``) → the principal it runs as
# (``operator`` for tools people run); :func:`principal_of` looks a command line up.
PRINCIPAL_OF_COMMAND: dict[str, str] = {
    "ingest": INGEST, "process": PROCESS, "materialize": MATERIALIZE, "views": MATERIALIZE,
    "notify": NOTIFY, "composite": COMPOSITE, "serve": SERVE,
    "backfill": SPARK, "backtest": SPARK, "sweep": SPARK, "runs prune": PRUNE,
}

Resource = Literal["topic", "group", "transactional_id"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal["READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "DELETE"]

PRODUCE: tuple[Operation, ...] = ("WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", "CREATE")
CONSUME: tuple[Operation, ...] = ("READ", "DESCRIBE", "DESCRIBE_CONFIGS", "CREATE")
OWN_TOPIC: tuple[Operation, ...] = ("READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", "CREATE")
GROUP: tuple[Operation, ...] = ("READ", "DESCRIBE")
TRANSACTIONS: tuple[Operation, ...] = ("WRITE", "DESCRIBE")

# Groups of short-lived helper consumers (random suffix per use): range probes, recall, rebuilds.
SPARK_SOURCE_GROUP_PREFIX = "spark-kafka-"


@dataclass(frozen=True, order=True)
class Grant:
    """``principal`` may do ``operations`` on the ``resource`` named ``name`` (or every name starting with it)."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operations: tuple[Operation, ...]


@dataclass(frozen=True)
class Deployment:
    """What the grants depend on: topic names and each service's consumer group."""

    topics: TopicRegistry
    process_group: str
    materialize_group: str
    notify_group: str
    composite_group: str

    @classmethod
    def default(cls, topics: TopicRegistry | None = None) -> Deployment:
        """The services' default groups (``<prefix>stockstream-<service>``, notify: ``stockstream-notify``)."""
        from schemas.topics import TopicRegistry

        registry = topics or TopicRegistry()
        prefix = registry.prefix
        return cls(registry, f"{prefix}stockstream-process", f"{prefix}stockstream-materialize",
                   "stockstream-notify", f"{prefix}stockstream-composite")


def _topics(principal: str, names: Iterable[str], operations: tuple[Operation, ...]) -> list[Grant]:
    return [Grant(principal, "topic", name, "literal", operations) for name in names]


def _stateful_app(principal: str, group: str, *, group_pattern: Pattern = "literal") -> list[Grant]:
    """A Quix application's own group, transactional ids and internal (changelog/repartition) topics."""
    separator, transactions = ("--", f"{group}-") if group_pattern == "literal" else ("", group)
    return [
        Grant(principal, "group", group, group_pattern, GROUP),
        Grant(principal, "transactional_id", transactions, "prefixed", TRANSACTIONS),
        Grant(principal, "topic", f"changelog__{group}{separator}", "prefixed", OWN_TOPIC),
        Grant(principal, "topic", f"repartition__{group}{separator}", "prefixed", OWN_TOPIC),
    ]


def grants(deployment: Deployment) -> list[Grant]:
    """Every grant of ``deployment``, sorted (stable for display and comparison)."""
    from schemas.topics import RUN_NAMESPACE

    registry = deployment.topics
    ticks, ticks_dlq = registry.ticks.name, registry.ticks_dlq.name
    candles = [registry.candles(timeframe).name for timeframe in registry.candle_timeframes]
    derived = [registry.indicators.name, registry.signals.name, registry.aggregates_daily.name, *candles]
    plan: list[Grant] = [
        # ingest: the log of record and its dead letters; reads recent ticks back to deduplicate.
        *_topics(INGEST, [ticks], ("WRITE", "READ", "DESCRIBE", "DESCRIBE_CONFIGS", "CREATE")),
        *_topics(INGEST, [ticks_dlq], PRODUCE),
        Grant(INGEST, "group", "ingest-recall-", "prefixed", GROUP),
        # process: ticks in; derived topics and refused ticks out, exactly-once.
        *_topics(PROCESS, [ticks], CONSUME),
        *_topics(PROCESS, [*derived, registry.signal_outcomes.name, ticks_dlq], PRODUCE),
        # it creates the deployment's topics at start (``ensure_topics``), the other services'
        # dead-letter topics included, which it may not write or read.
        *_topics(PROCESS, [registry.views_dlq.name, registry.notifications_dlq.name], ("CREATE", "DESCRIBE")),
        *_stateful_app(PROCESS, deployment.process_group),
        # it follows the ``live`` record of the runs topic (who serves live, docs/runs.md) and appends
        # probes there to settle a hand-over whose deadline passed; it creates the topic when missing.
        *_topics(PROCESS, [registry.runs.name], ("READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", "CREATE")),
        Grant(PROCESS, "group", "stockstream-sizes-", "prefixed", GROUP),
        # runs (docs/runs.md): a run's processor (a shadow, a promoted run resumed by a supervisor with
        # STOCKSTREAM_RUN) and a demoted live processor write a run's namespace: its topics
        # ``runs.<id>.*``, its group ``runs.<id>.process`` with its transactions and changelogs. Kafka
        # ACLs match a literal name or a prefix only, so the grant is every ``runs.`` name of the
        # deployment (never a live topic: those do not start with ``runs.``); it reads no run's topic.
        Grant(PROCESS, "topic", registry.name(f"{RUN_NAMESPACE}."), "prefixed", PRODUCE),
        *_stateful_app(PROCESS, registry.name(f"{RUN_NAMESPACE}."), group_pattern="prefixed"),
        # materialize: ticks and derived topics in, Redis out; what it refuses to views.dlq.
        *_topics(MATERIALIZE, [ticks, *derived, registry.signal_outcomes.name], CONSUME),
        *_topics(MATERIALIZE, [registry.views_dlq.name], PRODUCE),
        Grant(MATERIALIZE, "group", deployment.materialize_group, "literal", GROUP),
        Grant(MATERIALIZE, "group", "views-rebuild-", "prefixed", GROUP),
        # notify: signals in, refused notifications out; one lane (group, transactions, changelog) per channel.
        *_topics(NOTIFY, [registry.signals.name], CONSUME),
        *_topics(NOTIFY, [registry.notifications_dlq.name], PRODUCE),
        *_stateful_app(NOTIFY, f"{deployment.notify_group}.", group_pattern="prefixed"),
        Grant(NOTIFY, "group", "stockstream-notify-probe-", "prefixed", GROUP),
        # composite: ticks in, the index's ticks (venue "index") back into ticks.
        *_topics(COMPOSITE, [ticks], ("READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", "CREATE")),
        *_stateful_app(COMPOSITE, deployment.composite_group),
        # spark (backfill, backtest, sweep): reads ticks; writes only its own *.backfill and runs.* topics.
        *_topics(SPARK, [ticks], ("READ", "DESCRIBE", "DESCRIBE_CONFIGS")),
        *_topics(SPARK, [f"{name}.backfill" for name in [*derived, registry.signal_outcomes.name, ticks_dlq]], PRODUCE),
        Grant(SPARK, "topic", registry.name(f"{RUN_NAMESPACE}."), "prefixed", OWN_TOPIC),
        Grant(SPARK, "group", SPARK_SOURCE_GROUP_PREFIX, "prefixed", GROUP),
        Grant(SPARK, "group", "stockstream-range-probe-", "prefixed", GROUP),
        Grant(SPARK, "group", "stockstream-backfill-probe-", "prefixed", GROUP),
        # serve: reads the run list for GET /runs (its /health reads cluster metadata, which needs no grant).
        *_topics(SERVE, [registry.runs.name], ("READ", "DESCRIBE")),
        # prune (``stockstream runs prune``, scheduled): reads the run list and removes a pruned run's
        # record; deletes only a run's topics and its state's changelogs (the one DELETE of the plan);
        # asks whether a run's group (or the live group, for a demoted live processor) has members.
        *_topics(PRUNE, [registry.runs.name], ("READ", "WRITE", "DESCRIBE")),
        Grant(PRUNE, "topic", registry.name(f"{RUN_NAMESPACE}."), "prefixed", ("DELETE", "DESCRIBE")),
        Grant(PRUNE, "topic", f"changelog__{registry.name(RUN_NAMESPACE)}.", "prefixed", ("DELETE", "DESCRIBE")),
        Grant(PRUNE, "group", registry.name(f"{RUN_NAMESPACE}."), "prefixed", ("DESCRIBE",)),
        Grant(PRUNE, "group", deployment.process_group, "literal", ("DESCRIBE",)),
    ]
    return sorted(set(plan))


def principal_of(command: Iterable[str]) -> str | None:
    """The principal a ``stockstream`` command line (its subcommand words) runs as; None: not listed."""
    words = list(command)
    return PRINCIPAL_OF_COMMAND.get(" ".join(words[:2])) or PRINCIPAL_OF_COMMAND.get(words[0] if words else "")


def may(plan: Iterable[Grant], principal: str, operation: Operation, resource: Resource, name: str) -> bool:
    """Whether ``plan`` lets ``principal`` do ``operation`` on ``name`` (super users may do anything)."""
    if principal in SUPER_USERS:
        return True
    return any(
        grant.principal == principal and grant.resource == resource and operation in grant.operations
        and (name == grant.name if grant.pattern == "literal" else name.startswith(grant.name))
        for grant in plan
    )
