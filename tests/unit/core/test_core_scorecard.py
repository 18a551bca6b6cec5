"""Scorecards (processors/core/scorecard.py) against pandas on the definition (docs/core.md, "Scorecards")."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.core.scorecard import Scorecards
from schemas.events import Lineage, SignalOutcome, make_outcome_id

T0 = datetime(2026, 3, 2, tzinfo=UTC)
RETURNS = st.one_of(st.just(0.0), st.floats(-0.5, 0.5, allow_nan=False), st.sampled_from([1e-9, -1e-9, 0.01, -0.01]))


def outcome(n: int, strategy: str, symbol: str, horizon: str, gross: float, fee: float) -> SignalOutcome:
    signal_id = f"{n:032x}"
    return SignalOutcome(outcome_id=make_outcome_id(signal_id, horizon), signal_id=signal_id, symbol=symbol,
                         venue="test", strategy=strategy, strategy_version="0123456789abcdef", timeframe="5m",
                         side="BUY", horizon=horizon, signal_price=100.0, signal_ts=T0, price=100.0 * (1 + gross),
                         return_gross=gross, return_net=gross - fee, fee=fee, ts_event=T0, ts_init=T0,
                         lineage=Lineage(topic="ticks", partition=0, offset=n))


# A loss near the smallest float gives an infinite profit factor: pandas warns, the core returns inf (the views say "inf").
@pytest.mark.filterwarnings("ignore:overflow encountered in scalar divide:RuntimeWarning")
@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["BTC-USD", "ETH-USD"]),
                               st.sampled_from(["1m", "1h"]), RETURNS), min_size=1, max_size=60),
       fee=st.sampled_from([0.0, 0.001]))
def test_scorecards_equal_pandas(rows, fee):
    events = [outcome(n, *row, fee) for n, row in enumerate(rows)]
    cards = Scorecards().extend(events + events[: len(events) // 2]).cards()  # a record read twice counts once
    frame = pd.DataFrame([{"strategy": e.strategy, "symbol": e.symbol, "horizon": e.horizon, "net": e.return_net,
                           "gross": e.return_gross} for e in events])
    expected = {}
    for (strategy, symbol, horizon), group in frame.groupby(["strategy", "symbol", "horizon"]):
        net = group["net"]
        losses = -net[net < 0].sum()
        expected[(strategy, symbol, horizon)] = (
            len(net), (net > 0).mean(), net.mean(), net.median(), group["gross"].mean(),
            net[net > 0].sum() / losses if losses > 0 else None)
    got = {(c.key.strategy, c.key.symbol, c.key.horizon): (c.outcomes, c.hit_rate, c.mean_return, c.median_return,
                                                            c.mean_gross, c.profit_factor) for c in cards}
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        have = got[key]
        assert have[0] == want[0]
        for mine, theirs in zip(have[1:], want[1:], strict=True):
            assert (mine is None) == (theirs is None), key
            if mine is not None:
                assert mine == theirs or abs(mine - theirs) <= 1e-12 * max(1.0, abs(theirs)), (key, mine, theirs)
