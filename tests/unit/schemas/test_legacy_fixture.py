"""The frozen v1 encoder (tests/support/legacy/events_v1.py) still writes what the v1 release wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.legacy import events_v1

FIXTURE = Path(__file__).parents[2] / "fixtures" / "events_v1.jsonl"


def lines() -> list[tuple[str, str]]:
    return [(entry["type"], entry["json"]) for entry in map(json.loads, FIXTURE.read_text().splitlines())]


@pytest.mark.parametrize(("name", "text"), lines(), ids=[name for name, _ in lines()])
def test_the_frozen_v1_encoder_writes_the_v1_release_bytes(name, text):
    model = getattr(events_v1, name)
    event = model.model_validate_json(text)
    assert event.schema_version == 1
    assert events_v1.encode(event).decode() == text
