"""Compare two runs of the same input: committed topics value by value, Redis views key for key.

Two namespaces never hold byte-identical derived records: each payload names the topic its input
came from (``lineage.topic`` = ``<namespace>ticks``). :func:`neutral` removes exactly that
prefix, nothing else. Offsets of derived topics are not comparable either: an exactly-once
producer's commit markers (one per checkpoint, so timing-dependent) and aborted transactions
(after a kill) occupy offsets. So topics are compared as the sequence of committed payloads per
key (each key staying in its partition), and the views' ``<key>:pos`` hashes (field → offset of the record the field reflects)
are compared through the payload found at that offset in that run's own log: equal views must
reflect equal records, and a position that points at no committed record is a difference.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import redis

from processors.materialize.keys import POSITION_SUFFIX
from processors.materialize.rebuild import snapshot
from tests.support.kafka_tools import read_topic

DERIVED = ("indicators", "signals", "candles.1m", "aggregates.daily")
DEAD_LETTER_TOPICS = ("ticks.dlq", "views.dlq", "notifications.dlq")


def neutral(value: bytes | None, namespace: str) -> bytes:
    """The payload with this run's topic prefix removed from lineage/origin topic names."""
    return (value or b"").replace(f'"topic":"{namespace}'.encode(), b'"topic":"')


@dataclass
class TopicLog:
    """One run's committed records of one topic: payloads per partition in log order, and by offset."""

    base: str
    partitions: dict[int, list[bytes]] = field(default_factory=dict)  # in log order
    by_key: dict[bytes, list[bytes]] = field(default_factory=dict)  # per record key, in log order
    at: dict[tuple[int, int], bytes] = field(default_factory=dict)  # (partition, offset) → neutral payload
    partition_of: dict[bytes, int] = field(default_factory=dict)  # record key → partition

    @property
    def count(self) -> int:
        return sum(len(values) for values in self.partitions.values())


def read_log(bootstrap: str, namespace: str, base: str) -> TopicLog:
    log = TopicLog(base)
    grouped: dict[int, list[tuple[int, bytes, bytes]]] = defaultdict(list)
    for record in read_topic(bootstrap, f"{namespace}{base}", timeout_s=600):
        payload = neutral(record.value, namespace)
        grouped[record.partition].append((record.offset, record.key or b"", payload))
        log.at[(record.partition, record.offset)] = payload
        if record.key is not None:
            log.partition_of[record.key] = record.partition
    by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for partition, rows in sorted(grouped.items()):
        rows.sort()
        log.partitions[partition] = [payload for _, _, payload in rows]
        for _, key, payload in rows:
            by_key[key].append(payload)
    log.by_key = dict(by_key)
    return log


@dataclass
class TopicDiff:
    base: str
    clean: int
    chaos: int
    equal: bool
    first_difference: str | None = None


def compare_logs(clean: TopicLog, chaos: TopicLog) -> TopicDiff:
    """Equal when every key has the same payloads in the same order, in the same partition.

    Kafka orders records per partition, and the processor keeps each symbol's order; how records of
    *different* symbols interleave in an output partition depends on timing (its producer's
    partitioner need not map keys as the ticks' producer did, so one output partition can take
    symbols from several input partitions), so it is not part of the contract.
    """
    if clean.by_key == chaos.by_key and clean.partition_of == chaos.partition_of:
        return TopicDiff(clean.base, clean.count, chaos.count, True)
    if clean.partition_of != chaos.partition_of:
        return TopicDiff(clean.base, clean.count, chaos.count, False,
                         f"keys land in other partitions: clean {clean.partition_of} chaos {chaos.partition_of}")
    for key in sorted(set(clean.by_key) | set(chaos.by_key)):
        mine, theirs = clean.by_key.get(key, []), chaos.by_key.get(key, [])
        for index, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            if a != b:
                return TopicDiff(clean.base, clean.count, chaos.count, False,
                                 f"key {key!r} record #{index}: clean {a[:300]!r} chaos {b[:300]!r}")
        if len(mine) != len(theirs):
            return TopicDiff(clean.base, clean.count, chaos.count, False,
                             f"key {key!r}: clean has {len(mine)} records, chaos {len(theirs)}")
    return TopicDiff(clean.base, clean.count, chaos.count, False, "key sets differ")


def dead_letter_reasons(log: TopicLog) -> Counter[tuple[str, str]]:
    """(reason, origin or raw) of every dead letter — the creation time is left out (wall clock)."""
    found: Counter[tuple[str, str]] = Counter()
    for payloads in log.partitions.values():
        for payload in payloads:
            letter = json.loads(payload)
            where = json.dumps(letter.get("origin")) if letter.get("origin") else letter.get("raw", "")[:200]
            found[(letter.get("reason", "?"), where)] += 1
    return found


# ---- Redis views ---------------------------------------------------------------------------------

#: A candle position hash's field ``~<window>`` marks that window's stored candle as forming
#: (processors/materialize/store.py, UPSERT_CAPPED); its value is 1, not a log offset.
FORMING_MARK = "~"


def _position_topic(data_key: str, field_name: str) -> str | None:
    """Which log a position field refers to (see processors/materialize/keys.py for the layout)."""
    kind = data_key.split(":", 1)[0]
    if kind == "latest":
        return "ticks" if field_name == "tick" else "indicators"
    if kind == "rec":
        return "signals"
    if kind == "daily":
        return "aggregates.daily"
    if kind == "candles":
        return f"candles.{data_key.split(':')[2]}"
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def normalized_views(client: redis.Redis, prefix: str, logs: dict[str, TopicLog]) -> dict[str, Any]:
    """The views under ``prefix`` with the namespace removed and positions replaced by what they point at."""
    views: dict[str, Any] = {}
    raw = snapshot(client, prefix)
    for key, (kind, value) in raw.items():
        if kind == "hash" and key.endswith(POSITION_SUFFIX):
            data_key = key[: -len(POSITION_SUFFIX)]
            symbol = data_key.split(":")[1].encode()
            pointed = {}
            for name, offset in value.items():
                if _text(name).startswith(FORMING_MARK):  # a flag (the window's candle is forming), not an offset:
                    pointed[_text(name)] = _text(offset)  # mapped as one, it named whatever record sat at offset 1
                    continue
                topic = _position_topic(data_key, _text(name))
                log = logs.get(topic or "")
                partition = log.partition_of.get(symbol) if log is not None else None
                payload = log.at.get((partition, int(offset))) if log is not None and partition is not None else None
                pointed[_text(name)] = payload if payload is not None else f"no committed record at {topic}@{_text(offset)}"
            views[key] = (kind, pointed)
        elif kind == "hash":
            views[key] = (kind, {_text(k): neutral(v, prefix) for k, v in value.items()})
        elif kind == "zset":
            views[key] = (kind, [(neutral(member, prefix), score) for member, score in value])
        else:
            views[key] = (kind, value)
    return views


@dataclass
class ViewsDiff:
    keys_clean: int
    keys_chaos: int
    differing: list[str]
    # For the first differing keys: of a hash, each differing field's two values; else both values (truncated).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        return not self.differing


def compare_views(clean: dict[str, Any], chaos: dict[str, Any]) -> ViewsDiff:
    differing = sorted(key for key in set(clean) | set(chaos) if clean.get(key) != chaos.get(key))
    details: dict[str, Any] = {}
    for key in differing[:5]:
        ours, theirs = clean.get(key), chaos.get(key)
        if ours is not None and theirs is not None and ours[0] == theirs[0] == "hash":
            fields = sorted(name for name in set(ours[1]) | set(theirs[1]) if ours[1].get(name) != theirs[1].get(name))
            details[key] = {name: {"clean": _short(ours[1].get(name)), "chaos": _short(theirs[1].get(name))}
                            for name in fields[:5]}
        else:
            details[key] = {"clean": _short(ours), "chaos": _short(theirs)}
    return ViewsDiff(len(clean), len(chaos), differing, details)


def _short(value: Any) -> str:
    text = _text(value) if isinstance(value, (bytes, str)) else repr(value)
    return text if len(text) <= 400 else text[:400] + "…"


# ---- notifications ---------------------------------------------------------------------------------

@dataclass
class NotificationAccount:
    """What the webhook receiver recorded against the signals the channel subscribed to."""

    expected: int  # signals in the log that the subscription matches
    requests: int  # every POST, answered or not (retries included)
    delivered: int  # POSTs answered 200
    distinct_delivered: int  # distinct Idempotency-Keys among them
    raw_duplicates: int  # delivered − distinct: the documented kill-between-delivery-and-commit window
    missing: list[str]  # expected signal ids never delivered
    unexpected: list[str]  # delivered ids that are not (matching) signals of the log
    body_mismatches: list[str]  # delivered signal JSON differs from the log's signal

    @property
    def exactly_once_by_key(self) -> bool:
        return not self.missing and not self.unexpected and not self.body_mismatches


def account_notifications(signals: TopicLog, requests: list[Any], *, namespace: str, channel: str,
                          rules: tuple[str, ...]) -> NotificationAccount:
    """Match the receiver's record (``HttpReceiver.requests``) against the log's signals of ``rules``."""
    expected: dict[str, Any] = {}
    for payloads in signals.partitions.values():
        for payload in payloads:
            signal = json.loads(payload)
            if signal["rule"] in rules:
                expected[signal["signal_id"]] = signal
    delivered_keys: list[str] = []
    mismatches: list[str] = []
    unexpected: list[str] = []
    answered = [request for request in requests if request.answered_status == 200]
    for request in answered:
        key = request.headers.get("idempotency-key", "")
        signal_id, _, named_channel = key.partition(":")
        delivered_keys.append(key)
        if named_channel != channel or signal_id not in expected:
            unexpected.append(key)
            continue
        sent = json.loads(request.body).get("signal") or {}
        lineage = sent.get("lineage") or {}
        if isinstance(lineage.get("topic"), str):
            lineage["topic"] = lineage["topic"].removeprefix(namespace)
        if sent != expected[signal_id]:
            mismatches.append(signal_id)
    distinct = set(delivered_keys)
    missing = sorted(sid for sid in expected if f"{sid}:{channel}" not in distinct)
    return NotificationAccount(
        expected=len(expected), requests=len(requests), delivered=len(answered), distinct_delivered=len(distinct),
        raw_duplicates=len(answered) - len(distinct), missing=missing[:20], unexpected=sorted(set(unexpected))[:20],
        body_mismatches=mismatches[:20],
    )
