"""Frozen encoders of earlier releases, kept so tests can write the logs those releases wrote.

``events_v1`` is ``schemas/events.py`` as released before instruments (schema version 1), copied
verbatim except that the symbol and timeframe patterns are inlined (frozen too). Never edit it:
``tests/fixtures/events_v1.jsonl`` holds bytes written by that release, and
``tests/unit/schemas/test_legacy_fixture.py`` proves this copy still writes exactly them.
"""
