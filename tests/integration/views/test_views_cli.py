"""``stockstream query``: the same data as the API (one reader), as JSON or tables; clear exit codes."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputTopics
from processors.materialize.store import ViewStore
from schemas.topics import TopicRegistry
from stockstream.api.app import create_app
from stockstream.api.settings import ApiSettings
from stockstream.cli import app
from tests.integration.views.streams import make_stream
from tests.integration.views.test_views_store import log_of
from tests.support.processes import STOCKSTREAM

pytestmark = pytest.mark.integration

STREAM = make_stream(count=150, seed=41)


@pytest.fixture
def env(stack, redis_client, views_prefix) -> dict[str, str]:
    keys = ViewKeys(views_prefix)
    planner = BatchPlanner(keys, InputTopics.from_registry(TopicRegistry(prefix="x.")), Caps(),
                           lambda: datetime.now(UTC))
    ViewStore(redis_client, keys, publish=False).apply(planner.plan(log_of(STREAM)))
    return {"REDIS_URL": stack.redis_url, "REDIS_KEY_PREFIX": views_prefix,
            "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap}


def query(env: dict[str, str], *args: str):
    return CliRunner().invoke(app, ["query", *args], env=env)


def test_json_output_is_the_api_response(stack, env):
    api = ApiSettings(redis_url=env["REDIS_URL"], redis_key_prefix=env["REDIS_KEY_PREFIX"],
                      bootstrap_servers=stack.kafka_bootstrap)
    with TestClient(create_app(api)) as client:
        for args, path in [
            (["latest", "BTC-USD"], "/symbols/BTC-USD/latest"),
            (["signals", "BTC-USD", "--limit", "3", "--side", "SELL"], "/symbols/BTC-USD/signals?limit=3&side=SELL"),
            (["candles", "btc/usd", "-n", "2"], "/symbols/BTC-USD/candles?limit=2&timeframe=1m"),
            (["daily", "BTC-USD", "--from", "2026-11-27"], "/symbols/BTC-USD/daily?from=2026-11-27"),
            (["indicators", "BTC-USD", "-t", "tick", "-n", "4"], "/symbols/BTC-USD/indicators?timeframe=tick&limit=4"),
        ]:
            result = query(env, *args, "--json")
            assert result.exit_code == 0, result.output
            assert json.loads(result.output) == client.get(path).json(), args
        rec = json.loads(query(env, "recommendation", "BTC-USD", "--json").output)
        api_rec = client.get("/symbols/BTC-USD/recommendation").json()
        assert {k: v for k, v in rec.items() if k != "as_of"} == {k: v for k, v in api_rec.items() if k != "as_of"}


def test_tables_and_exit_codes(env):
    table = query(env, "latest", "BTC-USD")
    assert table.exit_code == 0 and "rsi_14" in table.output and f"{STREAM.ticks[-1].price:,.2f}" in table.output
    signals = query(env, "signals", "BTC-USD", "--rule", "ema_cross")
    assert signals.exit_code == 0 and "ema_cross" in signals.output and "rsi_reversal" not in signals.output
    recommendation = query(env, "recommendation", "BTC-USD")
    assert recommendation.exit_code == 0 and "HOLD" in recommendation.output  # the stream is in the past: decayed
    unknown = query(env, "latest", "DOGE-USD")
    assert unknown.exit_code == 1 and "unknown symbol DOGE-USD" in unknown.output
    assert query(env, "latest", "BTC USD!").exit_code == 2
    assert query(env, "candles", "BTC-USD", "--timeframe", "7m").exit_code == 2
    assert query(env, "daily", "BTC-USD", "--from", "yesterday").exit_code == 2


def test_the_console_script_and_an_unreachable_redis(env):
    done = subprocess.run([STOCKSTREAM, "query", "daily", "BTC-USD", "--json"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["days"][0]["tick_count"] == 150
    down = query({**env, "REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_SOCKET_TIMEOUT_SECONDS": "0.5"},
                 "latest", "BTC-USD")
    assert down.exit_code == 1 and "unreachable" in down.output
