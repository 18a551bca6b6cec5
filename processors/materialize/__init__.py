"""The materializer: Kafka events → Redis views (idempotent, offset-tracked), plus the read side.

Parts:
- ``keys``: the Redis key layout (the one place that spells a key).
- ``planner``: pure — decodes records, turns events into view writes, coalesces a batch.
- ``store``: executes a planned batch on Redis (Lua compare-and-set, pipelines) and publishes live updates.
- ``reader``: reads views back as pydantic models (used by the API and ``stockstream query``).
- ``service``: the long-running consumer loop (``stockstream materialize``).
- ``rebuild``: repopulate views from the log (``stockstream views rebuild``).
"""
