"""``stockstream tail`` shows payloads as data: rich markup in a record never styles or crashes the output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from processors.runtime.kafka_admin import ensure_topics
from processors.runtime.settings import KafkaSettings
from tests.support.kafka_tools import delete_topics, produce

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
STOCKSTREAM = str(Path(sys.executable).with_name("stockstream"))
HOSTILE = ["[/x]", "[bold red]boom[/]", "[link=https://evil.example]click[/link]", "[/]"]


def test_tail_prints_markup_in_payloads_literally(stack, namespace) -> None:
    settings = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=namespace)
    topic = settings.topics().ticks_dlq
    ensure_topics(settings, [topic])
    letter = {"schema_version": 1, "source": "file:[/x]", "reason": "invalid_json", "detail": "[bold red]boom[/]",
              "raw": "[link=https://evil.example]click[/link] [/]", "ts_init": "2026-01-01T00:00:00Z"}
    produce(stack.kafka_bootstrap, topic.name, [("[/x]", json.dumps(letter).encode()), ("k", b"[/] not json [/x]")])
    try:
        for extra in ([], ["--json"]):
            run = subprocess.run(  # noqa: S603
                [STOCKSTREAM, "tail", "--topic", "ticks.dlq", "--from-beginning", "--limit", "2", "--idle-exit", "30",
                 *extra], env={"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
                               "STOCKSTREAM_TOPIC_PREFIX": namespace, "COLUMNS": "400"},
                capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr[-2000:]
            assert "Traceback" not in run.stderr
            for text in ("[/x]", "[/]"):
                assert text in run.stdout, (extra, run.stdout)
            if not extra:
                assert "[bold red]boom[/]" in run.stdout  # shown as typed, not styled away
    finally:
        delete_topics(stack.kafka_bootstrap, namespace)
