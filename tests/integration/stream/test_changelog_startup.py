"""Start-up race: a store's changelog topic that the broker does not list yet.

Quix creates a new store's changelog topic and looks it up once; on a busy machine the broker's
metadata lags the creation and the start-up failed with ``TopicNotFoundError`` (CI soak, notifier
chaos runs). :func:`processors.runtime.quix_topics.register_with_changelog` registers again until
the topic is listed. Here, on the real broker, the changelog topic appears only after Quix's first
lookup failed (Quix's own creation is switched off so that the first lookup fails every time), the
way the lagging metadata made it appear in those runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from quixstreams import Application
from quixstreams.models.topics.exceptions import TopicNotFoundError

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.quix_topics import register_with_changelog
from processors.runtime.settings import KafkaSettings
from schemas.events import Signal
from schemas.topics import TopicSpec

pytestmark = pytest.mark.integration

PARTITIONS = 3


def _application(bootstrap: str, namespace: str, state_dir: Path) -> tuple[Application, str, str]:
    """A Quix app over a fresh input topic that never creates topics itself; its changelog topic's name."""
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=namespace)
    source = f"{namespace}signals"
    ensure_topics(settings, [TopicSpec(source, "signal_id", Signal, PARTITIONS)])
    group = f"{namespace}group"
    app = Application(broker_address=bootstrap, consumer_group=group, auto_create_topics=False,
                      use_changelog_topics=True, processing_guarantee="exactly-once", state_dir=str(state_dir),
                      loglevel=None)
    return app, source, f"changelog__{group}--{source}--default"


def test_a_changelog_topic_listed_only_after_the_first_lookup_is_waited_for(stack, namespace: str,
                                                                            tmp_path: Path) -> None:
    app, source, changelog = _application(stack.kafka_bootstrap, namespace, tmp_path)
    sdf = app.dataframe(app.topic(source, value_deserializer="bytes"))
    missed: list[str] = []

    def appears(error: TopicNotFoundError) -> None:  # the broker lists the topic after the failed lookup
        missed.append(str(error))
        ensure_topics(KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace),
                      [TopicSpec(changelog, "signal_id", Signal, PARTITIONS, cleanup_policy="compact")])

    register_with_changelog(lambda: sdf.update(lambda value, state: None, stateful=True), on_retry=appears)
    assert len(missed) == 1 and changelog in missed[0]  # the first lookup failed; the next one found it
    assert "default" in sdf.processing_context.state_manager.stores[sdf.stream_id]  # the store is registered


def test_a_changelog_topic_that_never_appears_fails_the_start_up(stack, namespace: str, tmp_path: Path) -> None:
    app, source, changelog = _application(stack.kafka_bootstrap, namespace, tmp_path)
    sdf = app.dataframe(app.topic(source, value_deserializer="bytes"))
    now = [0.0]
    retries: list[str] = []

    def sleep(seconds: float) -> None:  # fake time: the deadline is reached by count, not by waiting
        now[0] += seconds

    with pytest.raises(TopicNotFoundError, match=changelog):
        register_with_changelog(lambda: sdf.update(lambda value, state: None, stateful=True), timeout_s=3.0,
                                on_retry=lambda error: retries.append(str(error)), clock=lambda: now[0], sleep=sleep)
    assert len(retries) >= 3  # looked again (0.2, 0.4, 0.8, 1.6 s of fake time) before giving up
    assert sdf.processing_context.state_manager.stores == {}  # nothing half-registered
