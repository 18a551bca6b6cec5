"""Each bug the fuzz tier found, as a plain deterministic test (the fuzz tests keep them as ``@example`` too)."""

from __future__ import annotations

import json

from processors.ingest.sources.base import Rejected
from processors.ingest.sources.exchanges.binance import BinanceAdapter
from processors.ingest.validation import TimeBounds
from schemas.events import DeadLetter, encode
from tests.fuzz.invariants import NOW, dead_letter_of
from tests.support.fake_servers.exchange_ws import binance_trade

T_MS = 1_714_564_800_123


def test_dead_letter_with_a_lone_surrogate_still_encodes() -> None:
    """A JSON frame may carry "\\ud800" (valid JSON, not encodable as UTF-8): the ingest service crashed
    publishing its dead letter (PydanticSerializationError). The schema now backslash-escapes it."""
    (rejected,) = BinanceAdapter("ws://x", ("BTC-USDT",), TimeBounds()).parse(
        json.dumps(binance_trade(1, "1", T_MS, symbol="\ud800")), NOW)
    assert isinstance(rejected, Rejected) and rejected.reason == "symbol_unexpected"
    letter = DeadLetter.model_validate_json(encode(dead_letter_of("binance", rejected)))
    assert "\\ud800" in letter.detail
