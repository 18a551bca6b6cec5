"""``stockstream tail --topic``: every topic of a deployment has a logical name tail resolves."""

from __future__ import annotations

import pytest
import typer

from schemas.topics import TopicRegistry
from stockstream.commands.tail import resolve_topic


def test_every_topic_of_the_deployment_can_be_tailed_by_its_logical_name() -> None:
    registry = TopicRegistry(prefix="ns.", candle_timeframes=("1m", "1h"))
    for spec in registry.all():  # e.g. views.dlq, which the runbooks tell on-call to tail
        assert resolve_topic(registry, spec.name.removeprefix("ns.")) == spec


def test_an_unknown_topic_names_the_known_ones() -> None:
    with pytest.raises(typer.BadParameter, match=r"unknown topic 'view.dlq'; known: .*views\.dlq.*candles\.<tf>"):
        resolve_topic(TopicRegistry(), "view.dlq")
