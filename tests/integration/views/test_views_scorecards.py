"""Scorecards in the views (issue 15): signal outcomes materialized per instrument, summed up by ``GET /scorecards``.

On the real Redis: outcomes go through the planner and the store like every other record
(re-delivered records change nothing), ``GET /scorecards`` answers exactly what
:class:`processors.core.scorecard.Scorecards` computes from the outcomes the views keep (the
core is held to pandas in tests/unit/core/test_core_scorecard.py), the filters (strategy,
symbol, venue, timeframe, horizon) and ``?run=`` select, and the cap keeps each instrument's
newest outcomes by signal time.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from processors.core.scorecard import Scorecards
from processors.materialize.keys import ViewKeys
from processors.materialize.planner import BatchPlanner, Caps, InputRecord, InputTopics
from processors.materialize.store import ViewStore
from schemas.events import Lineage, SignalOutcome, encode, make_outcome_id
from schemas.runs import run_redis_prefix
from schemas.topics import TopicRegistry
from stockstream.api.app import create_app
from stockstream.api.settings import ApiSettings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, tzinfo=UTC)
REGISTRY = TopicRegistry(prefix="x.")
TOPIC = REGISTRY.signal_outcomes.name


def outcomes(count: int, seed: int) -> list[SignalOutcome]:
    """Outcomes of ``count`` signals over two strategies, three instruments, two timeframes, two horizons."""
    rng = random.Random(seed)
    made = []
    for n in range(count):
        symbol, venue = rng.choice([("BTC-USD", "test"), ("BTC-USD", "kraken"), ("ETH-USD", "test")])
        strategy, timeframe = rng.choice([("ema_cross", "tick"), ("trend", "1m")])
        side = rng.choice(["BUY", "SELL"])
        signal_id = f"{seed:08x}{n:024x}"
        signal_ts = T0 + timedelta(seconds=7 * n)
        for horizon, minutes in (("1m", 1), ("5m", 5)):
            price = round(100.0 * (1 + rng.gauss(0, 0.01)), 4)
            gross = (1 if side == "BUY" else -1) * (price / 100.0 - 1)
            made.append(SignalOutcome(
                outcome_id=make_outcome_id(signal_id, horizon), signal_id=signal_id, symbol=symbol, venue=venue,
                strategy=strategy, strategy_version="0123456789abcdef", timeframe=timeframe, side=side,
                horizon=horizon, signal_price=100.0, signal_ts=signal_ts, price=price, return_gross=gross,
                return_net=gross - 0.001, fee=0.001, ts_event=signal_ts + timedelta(minutes=minutes),
                ts_init=signal_ts + timedelta(minutes=minutes), lineage=Lineage(topic="ticks", partition=0, offset=n)))
    return made


def log_of(events: list[SignalOutcome]) -> list[InputRecord]:
    return [InputRecord(TOPIC, 0, offset, f"{e.symbol}@{e.venue}".encode(), encode(e)) for offset, e in enumerate(events)]


def expected(events: list[SignalOutcome], **only: str) -> list[dict[str, object]]:
    cards = Scorecards().extend(e for e in events if all(getattr(e, name) == value for name, value in only.items()))
    return [{**card.key._asdict(), "outcomes": card.outcomes, "hit_rate": card.hit_rate,
             "mean_return": card.mean_return, "median_return": card.median_return, "mean_gross": card.mean_gross,
             "profit_factor": card.profit_factor, "versions": list(card.versions)} for card in cards.cards()]


def write(client, prefix: str, events: list[SignalOutcome], caps: Caps | None = None) -> None:
    keys = ViewKeys(prefix)
    planner = BatchPlanner(keys, InputTopics.from_registry(REGISTRY), caps or Caps(), lambda: T0)
    store = ViewStore(client, keys, publish=False)
    records = log_of(events)
    store.apply(planner.plan(records[: len(records) // 2]))
    store.apply(planner.plan(records))  # the first half delivered again: nothing changes twice


LIVE = outcomes(300, seed=1)
RUN = outcomes(80, seed=2)


@pytest.fixture
def api(stack, redis_client, views_prefix) -> Iterator[TestClient]:
    write(redis_client, views_prefix, LIVE)
    write(redis_client, run_redis_prefix(views_prefix, "alt"), RUN)
    settings = ApiSettings(bootstrap_servers=stack.kafka_bootstrap, redis_url=stack.redis_url,
                           redis_key_prefix=views_prefix)
    with TestClient(create_app(settings)) as client:
        yield client


def test_scorecards_are_the_core_over_the_materialized_outcomes(api, redis_client, views_prefix):
    assert redis_client.zcard(f"{views_prefix}outcomes:BTC-USD@kraken") == sum(
        1 for e in LIVE if e.symbol == "BTC-USD" and e.venue == "kraken")
    body = api.get("/scorecards").json()
    assert body == {"scorecards": expected(LIVE)}
    assert len(body["scorecards"]) == 2 * 3 * 2  # (strategy+timeframe) × instruments × horizons
    assert all(0 < row["outcomes"] for row in body["scorecards"])


@pytest.mark.parametrize("params, only", [
    ({"strategy": "trend"}, {"strategy": "trend"}),
    ({"symbol": "BTC-USD"}, {"symbol": "BTC-USD"}),
    ({"symbol": "BTC-USD", "venue": "kraken"}, {"symbol": "BTC-USD", "venue": "kraken"}),
    ({"horizon": "5m", "timeframe": "1m"}, {"horizon": "5m", "timeframe": "1m"}),
    ({"strategy": "ema_cross", "symbol": "ETH-USD", "venue": "test", "horizon": "1m"},
     {"strategy": "ema_cross", "symbol": "ETH-USD", "venue": "test", "horizon": "1m"}),
    ({"strategy": "nothing"}, {"strategy": "nothing"}),
])
def test_filters_select_cards(api, params, only):
    assert api.get("/scorecards", params=params).json() == {"scorecards": expected(LIVE, **only)}


def test_a_runs_scorecards_are_its_own(api):
    assert api.get("/scorecards", params={"run": "alt"}).json() == {"scorecards": expected(RUN)}
    assert api.get("/scorecards", params={"run": "live"}).json() == {"scorecards": expected(LIVE)}
    assert api.get("/scorecards", params={"run": "nosuch"}).json() == {"scorecards": []}


@pytest.mark.parametrize("params", [{"horizon": "5 m"}, {"horizon": "0m"}, {"strategy": "a:b"}, {"symbol": "btc"},
                                    {"timeframe": "7m"}, {"run": "Bad"}, {"venue": "a b"}])
def test_invalid_filters_are_422(api, params):
    assert api.get("/scorecards", params=params).status_code == 422


def test_the_cap_keeps_each_instruments_newest_outcomes(stack, redis_client, views_prefix):
    write(redis_client, views_prefix, LIVE, Caps(outcomes=40))
    kept = []
    for instrument in {(e.symbol, e.venue) for e in LIVE}:
        mine = sorted((e for e in LIVE if (e.symbol, e.venue) == instrument), key=lambda e: (e.signal_ts, encode(e)))
        kept += mine[-40:]
    settings = ApiSettings(bootstrap_servers=stack.kafka_bootstrap, redis_url=stack.redis_url,
                           redis_key_prefix=views_prefix)
    with TestClient(create_app(settings)) as client:
        assert client.get("/scorecards").json() == {"scorecards": expected(kept)}
