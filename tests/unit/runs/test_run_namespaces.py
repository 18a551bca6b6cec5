"""A run's names: topics under ``runs.<id>.``, its own groups and Redis prefix; the notifier stays live."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from processors.materialize.settings import MaterializeSettings
from processors.notify.settings import NotifySettings
from processors.stream.settings import ProcessSettings
from schemas.runs import InvalidRunIdError, check_run_id, run_redis_prefix
from schemas.topics import DAY_MS, FOREVER, TopicRegistry


def test_a_run_registry_renames_every_derived_topic_and_keeps_the_ticks_log():
    live = TopicRegistry(prefix="ns.", candle_timeframes=("1m", "1h"))
    run = live.for_run("alt-1")
    live_names = {spec.name for spec in live.all()}
    run_names = [spec.name for spec in run.all()]
    assert run_names == ["ns.ticks", "ns.runs.alt-1.ticks.dlq", "ns.runs.alt-1.candles.1m", "ns.runs.alt-1.candles.1h",
                         "ns.runs.alt-1.indicators", "ns.runs.alt-1.signals", "ns.runs.alt-1.signals.outcomes",
                         "ns.runs.alt-1.aggregates.daily",
                         "ns.runs.alt-1.views.dlq"]
    assert set(run_names) & live_names == {"ns.ticks"}, "a run writes no live topic"
    assert run.ticks.retention_ms == FOREVER
    # Kept until `runs prune` (RUN_RETENTION after the run ends), never expired by the broker: outputs carry their
    # ticks' timestamps, so a time retention would delete a historical run's outputs at the next retention check.
    assert all(spec.retention_ms == FOREVER and spec.config()["retention.bytes"] == "-1" for spec in run.run_outputs())
    assert live.indicators.retention_ms == 7 * DAY_MS and run.indicators.retention_ms == FOREVER
    assert run.live() == live
    assert live.runs.name == "ns.runs" and live.runs.config()["cleanup.policy"] == "compact"


@pytest.mark.parametrize("bad", ["", "Live", "a_b", "-a", "a" * 41, "live", "a.b", "a b"])
def test_run_ids_that_would_break_names_are_refused(bad):
    with pytest.raises(InvalidRunIdError):
        check_run_id(bad)


def test_services_of_a_run_use_its_groups_and_redis_prefix():
    process = ProcessSettings(topic_prefix="ns.", run_id="alt")
    assert process.group_id == "ns.runs.alt.process"
    assert process.topics().signals.name == "ns.runs.alt.signals"
    views = MaterializeSettings(topic_prefix="ns.", run_id="alt", redis_key_prefix="ss:")
    assert views.group_id == "ns.runs.alt.materialize"
    assert views.view_prefix == "ss:run:alt:" == run_redis_prefix("ss:", "alt")
    assert set(views.input_topics().routes) == {"ns.ticks", "ns.runs.alt.indicators", "ns.runs.alt.signals",
                                                "ns.runs.alt.aggregates.daily", "ns.runs.alt.candles.1m",
                                                "ns.runs.alt.signals.outcomes"}
    assert ProcessSettings(topic_prefix="ns.").group_id == "ns.stockstream-process"
    assert MaterializeSettings().view_prefix == MaterializeSettings().redis_key_prefix


def test_the_notifier_refuses_a_run():
    with pytest.raises(ValidationError, match="only reads live signals"):
        NotifySettings(run_id="alt")


def test_run_retention_is_the_runs_lifetime_not_its_topics_retention():
    """RUN_RETENTION dates a run's expiry (pruned then); its topics get no broker time retention."""
    settings = ProcessSettings(run_id="alt", run_retention="2h")
    assert settings.topics().run_retention_ms == 7_200_000
    assert {spec.retention_ms for spec in settings.topics().run_outputs()} == {FOREVER}
    with pytest.raises(ValidationError):
        ProcessSettings(run_retention="0")
