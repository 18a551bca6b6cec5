"""Strategy files (``load_strategy``) and notifier subscription files (``load_config``) as operators write them.

Inputs: the shipped examples (docs/examples) with fields dropped, replaced by any value or added,
written back as TOML or YAML; hostile YAML (anchors, tags, odd keys); raw bytes with any
extension. Properties: the loader returns a config or raises its own error type
(``StrategyError`` / ``SubscriptionConfigError``) with a message — never anything else; and a
config it accepts is usable: every symbol's pipeline can be built and run, every cooldown and
rate is a finite non-negative number.
"""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomli_w
import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st

from processors.core.pipeline import SymbolProcessor
from processors.core.strategy import PipelineConfigs, StrategyError, load_strategy
from processors.notify.subscriptions import NotifyConfig, SubscriptionConfigError, load_config
from schemas.events import Lineage, Tick
from schemas.instruments import Instrument
from tests.fuzz.strategies import DEEP_JSON, fuzz, json_values, mutated

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
STRATEGY = tomllib.loads((EXAMPLES / "strategy.toml").read_text())
STRATEGY_YAML = yaml.safe_load((EXAMPLES / "strategy.yaml").read_text())
SUBSCRIPTIONS = tomllib.loads((EXAMPLES / "subscriptions.toml").read_text())
EXTENSIONS = [".toml", ".yaml", ".yml", ".json", ""]
HOSTILE_YAML = [
    "a: &a [*a]",  # a recursive alias
    "a: &a ['x','x','x']\nb: &b [*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b]\nd: [*c,*c,*c,*c]\n",  # alias fan-out
    "!!python/object/apply:os.system ['echo pwned']",
    "? [1, 2]\n: 3",  # a sequence as a key
    "{1: 2, null: 3, 2.5: x}",
    "rules: !!binary aGVsbG8=",
    "channels: {a: {type: console}}\nsubscriptions: [{channel: a, cooldown: .nan}]",
    "channels: {a: {type: console}}\nsubscriptions: [{channel: a, cooldown: .inf}]",
    "channels: {a: {type: webhook, url: 'http://x', rate_limit: {per_second: .nan}}}\nsubscriptions: [{channel: a}]",
    "indicators: {sma: [.nan]}",
    "%YAML 1.1\n---\n- a\n...\n---\n- b",
    "\ufeffname: bom",
    "\t- tab",
]


def _deep_mutations(valid: dict[str, Any], depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """``mutated`` applied at the top level and, for nested tables, one level down."""
    nested = {key: value for key, value in valid.items() if isinstance(value, dict)}
    if depth == 0 or not nested:
        return mutated(valid)
    return st.one_of(mutated(valid), *(
        _deep_mutations(value, depth - 1).map(lambda inner, key=key: {**valid, key: inner})
        for key, value in nested.items()))


def _toml(value: object) -> str:
    def clean(item: object) -> object:  # TOML has no null: drop it the way a careless writer would
        if isinstance(item, dict):
            return {str(k): clean(v) for k, v in item.items() if v is not None}
        if isinstance(item, list):
            return [clean(v) for v in item if v is not None]
        return item

    try:
        return tomli_w.dumps(clean(value) if isinstance(value, dict) else {"value": clean(value)})
    except (TypeError, ValueError, OverflowError):
        return yaml.safe_dump(value)  # not representable in TOML: the operator gets a parse error


def _text(value: object, syntax: str) -> str:
    return _toml(value) if syntax == "toml" else yaml.safe_dump(value, allow_unicode=True)


def _files(*valid: dict[str, Any]) -> st.SearchStrategy[tuple[bytes, str]]:
    structured = st.one_of(*(_deep_mutations(item) for item in valid), json_values())
    written = st.tuples(structured, st.sampled_from(["toml", "yaml"])).map(
        lambda pair: (_text(*pair).encode("utf-8", "surrogatepass"), ".toml" if pair[1] == "toml" else ".yaml"))
    garbage = st.tuples(st.one_of(st.binary(max_size=300), st.sampled_from(HOSTILE_YAML).map(str.encode),
                                  DEEP_JSON.map(str.encode)), st.sampled_from(EXTENSIONS))
    return st.one_of(written, written, written, garbage)


def _write(folder: Path, data: bytes, suffix: str) -> Path:
    path = folder / f"config{suffix}"
    path.write_bytes(data)
    return path


T0 = datetime(2024, 5, 1, tzinfo=UTC)
#: Wording of the libraries under the loaders, never shown to a person (issue 20).
LIBRARY_WORDING = ("Input tag", "Value error", "Extra inputs are not permitted", "Input should be", "validation error",
                   "<unicode string>", "pydantic", "Tuple should", "type=", "errors.pydantic.dev")


def _assert_plain(message: str) -> None:
    assert not [words for words in LIBRARY_WORDING if words in message], message


@given(file=_files(STRATEGY, STRATEGY_YAML))
@example(file=(b"\xff\xfe\x00name = 1", ".toml"))
@example(file=(b"[indicators]\nsma = [" * 2000, ".toml"))
@example(file=(("[" * 3000).encode(), ".yaml"))
@fuzz(400)
def test_strategy_files(tmp_path_factory, file: tuple[bytes, str]) -> None:
    path = _write(tmp_path_factory.mktemp("strategy"), *file)
    try:
        strategy = load_strategy(path)
    except StrategyError as error:
        assert str(error).startswith(str(path)), error
        _assert_plain(str(error))
        event("refused")
        return
    event("accepted")
    # Accepted: every symbol's pipeline builds and runs (validation happened once, at start).
    configs = PipelineConfigs(strategy, candle_timeframes=("1m",), grace_ms=5_000)
    for symbol in ["BTC-USD", *strategy.symbols]:
        processor = SymbolProcessor(configs.for_symbol(symbol), Instrument(symbol, "fuzz"))
        for index in range(3):
            moment = T0 + timedelta(seconds=40 * index)
            processor.process(Tick(symbol=symbol, venue="fuzz", price=100.0 + index, volume=1.0, ts_event=moment, ts_init=moment,
                                   source="fuzz", source_id=str(index)), Lineage(topic="t", partition=0, offset=index))


def _check_usable(config: NotifyConfig) -> None:
    for subscription in config.subscriptions:
        assert math.isfinite(subscription.cooldown_s) and subscription.cooldown_s >= 0, subscription
    for channel in config.channels.values():
        limit = channel.effective_rate_limit()
        if limit is not None:
            assert math.isfinite(limit.per_second) and limit.per_second > 0, limit


@given(file=_files(SUBSCRIPTIONS))
@example(file=(HOSTILE_YAML[6].encode(), ".yaml"))
@example(file=(HOSTILE_YAML[7].encode(), ".yaml"))
@example(file=(HOSTILE_YAML[8].encode(), ".yaml"))
@example(file=(b"\xff\xfe\x00channels = 1", ".toml"))
@example(file=(b"channels:\n  a: {type: console}\nsubscriptions: [{channel: a, cooldown: 1e400}]", ".yaml"))
@example(file=(b'channels:\n  a: {type: console}\nsubscriptions: [{channel: a, cooldown: "99999999999999999999999d"}]',
               ".yaml"))
@fuzz(400)
def test_subscription_files(tmp_path_factory, file: tuple[bytes, str]) -> None:
    path = _write(tmp_path_factory.mktemp("subscriptions"), *file)
    try:
        config = load_config(path)
    except SubscriptionConfigError as error:
        assert str(path) in str(error), error
        _assert_plain(str(error))
        event("refused")
        return
    event("accepted")
    _check_usable(config)
