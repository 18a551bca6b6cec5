"""``stockstream run``'s service list: ingest follows INGEST_SOURCE/INGEST_SYMBOLS, the composite runs on request."""

from __future__ import annotations

from stockstream.supervisor import default_services

ALL = {"ingest", "process", "composite", "materialize", "notify", "serve"}


def test_ingest_takes_its_source_from_the_environment_not_a_hard_coded_simulator():
    services = default_services(ALL, 8000, {"INGEST_SOURCE": "kraken", "INGEST_SYMBOLS": "BTC-USD"})
    ingest = next(spec for spec in services if spec.name == "ingest")
    assert ingest.args == ("ingest",)  # the child inherits INGEST_SOURCE / INGEST_SYMBOLS
    assert ingest.url.startswith("kraken ")
    assert default_services(ALL, 8000, {})[0].url.startswith("simulator ")


def test_the_composite_runs_only_when_composite_symbols_names_some():
    assert "composite" not in {spec.name for spec in default_services(ALL, 8000, {})}
    names = [spec.name for spec in default_services(ALL, 8000, {"COMPOSITE_SYMBOLS": "BTC-USD"})]
    assert names == ["ingest", "process", "composite", "materialize", "notify", "serve"]
