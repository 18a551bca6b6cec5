"""The instrument admission rule (processors/core/admission.py): allow-list and per-partition share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.core.admission import INSTRUMENT_LIMIT, INSTRUMENT_NOT_ALLOWED, InstrumentPolicy
from processors.runtime.settings import InstrumentLimitSettings
from processors.stream.settings import ProcessSettings


def test_the_limit_is_shared_out_over_the_partitions_rounded_up():
    policy = InstrumentPolicy(max_instruments=10, partitions=4)
    assert policy.per_partition == 3
    assert policy.total == 12
    assert InstrumentPolicy(max_instruments=8, partitions=4).total == 8


@given(st.integers(1, 10**6), st.integers(1, 1024))
def test_the_total_is_never_below_the_limit_nor_a_partition_more(limit, partitions):
    policy = InstrumentPolicy(max_instruments=limit, partitions=partitions)
    assert limit <= policy.total < limit + partitions


def test_a_new_instrument_is_admitted_below_the_limit_only():
    policy = InstrumentPolicy(max_instruments=2)
    assert policy.refusal("BTC-USD", "binance", admitted=1, limit=2) is None
    assert policy.refusal("BTC-USD", "binance", admitted=2, limit=2) == INSTRUMENT_LIMIT


def test_the_allow_list_names_instruments_or_symbols_on_every_venue():
    policy = InstrumentPolicy(allow=frozenset({"BTC-USD", "ETH-USD@kraken"}))
    assert policy.allows("BTC-USD", "binance") and policy.allows("BTC-USD", "kraken")
    assert policy.allows("ETH-USD", "kraken")
    assert not policy.allows("ETH-USD", "binance")
    assert policy.refusal("ETH-USD", "binance", admitted=0, limit=10) == INSTRUMENT_NOT_ALLOWED
    assert InstrumentPolicy().allows("ANY", "venue")  # no list: everything


def test_a_refusal_says_what_to_change():
    policy = InstrumentPolicy(max_instruments=5)
    assert "MAX_INSTRUMENTS=5" in policy.describe(INSTRUMENT_LIMIT, "X@y", 5)
    assert "INSTRUMENT_ALLOW" in policy.describe(INSTRUMENT_NOT_ALLOWED, "X@y", 5)


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        InstrumentPolicy(max_instruments=0)


def test_settings_read_the_limit_and_the_allow_list(monkeypatch):
    monkeypatch.setenv("MAX_INSTRUMENTS", "100")
    monkeypatch.setenv("INSTRUMENT_ALLOW", " BTC-USD, ETH-USD@kraken ,")
    monkeypatch.setenv("STOCKSTREAM_PARTITIONS", "8")
    policy = ProcessSettings(_env_file=None).instrument_policy()
    assert policy == InstrumentPolicy(100, 8, frozenset({"BTC-USD", "ETH-USD@kraken"}))
    assert policy.per_partition == 13


def test_the_default_is_generous_and_allows_everything():
    policy = InstrumentLimitSettings(_env_file=None).instrument_policy()
    assert policy.max_instruments == 10_000
    assert policy.allow == frozenset()
