"""The per-channel decision: unsubscribed, duplicate, stale, cooldown, deliver (pure, injected time)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from processors.notify.ledger import LedgerEntry, cooldown_key, cooling_down, decide, epoch_ms, ledger_key
from processors.notify.subscriptions import NotifyConfig, Subscription
from tests.unit.notify.factories import T0, make_signal

NOW = T0 + timedelta(seconds=5)


def subscriptions(*items: dict[str, object]) -> tuple[Subscription, ...]:
    return NotifyConfig.model_validate({"channels": {"c": {"type": "console"}},
                                        "subscriptions": [{"channel": "c", **item} for item in items]}).subscriptions


ALL = subscriptions({"name": "all", "cooldown": "10m"})


def test_a_fresh_matching_signal_is_delivered_for_the_subscriptions_it_satisfies() -> None:
    subs = subscriptions({"name": "btc", "symbols": ["BTC-USD"], "cooldown": 60}, {"name": "eth", "symbols": ["ETH-USD"]})
    verdict = decide(make_signal(), subs, None, {}, NOW, max_age_s=900)
    assert verdict.action == "deliver" and verdict.subscriptions == ("btc",)


def test_a_signal_nobody_wants_is_not_recorded() -> None:
    verdict = decide(make_signal(symbol="ETH-USD"), subscriptions({"symbols": ["BTC-USD"]}), None, {}, NOW, 900)
    assert verdict.action == "unsubscribed" and verdict.ledger_status is None


def test_anything_in_the_ledger_is_a_duplicate() -> None:
    for status in ("delivered", "dead_lettered", "skipped_stale", "dropped_cooldown"):
        entry = LedgerEntry(status, 1)  # type: ignore[arg-type]
        assert decide(make_signal(), ALL, entry, {}, NOW, 900).action == "duplicate"
        # A renotify run consults its own ledger: within the run, a signal is announced once.
        assert decide(make_signal(), ALL, entry, {}, NOW, 900, renotify=True).action == "duplicate"


def test_stale_signals_are_skipped_by_the_injected_clock_unless_renotifying() -> None:
    signal = make_signal(ts_event=T0)
    assert decide(signal, ALL, None, {}, T0 + timedelta(seconds=900), 900).action == "deliver"
    verdict = decide(signal, ALL, None, {}, T0 + timedelta(seconds=900.001), 900)
    assert verdict.action == "stale" and verdict.ledger_status == "skipped_stale"
    assert decide(signal, ALL, None, {}, T0 + timedelta(days=30), 900, renotify=True).action == "deliver"


def test_cooldown_is_per_subscription_and_in_event_time() -> None:
    subs = subscriptions({"name": "slow", "cooldown": "10m"}, {"name": "fast", "cooldown": "1m"})
    signal = make_signal(ts_event=T0 + timedelta(minutes=5))
    last = {"slow": epoch_ms(T0), "fast": epoch_ms(T0)}
    verdict = decide(signal, subs, None, last, NOW + timedelta(minutes=5), 900)
    assert verdict.action == "deliver" and verdict.subscriptions == ("fast",)
    both_cooling = {"slow": epoch_ms(T0 + timedelta(minutes=4, seconds=30)), "fast": epoch_ms(T0 + timedelta(minutes=4, seconds=30))}
    verdict = decide(signal, subs, None, both_cooling, NOW + timedelta(minutes=5), 900)
    assert verdict.action == "cooldown" and verdict.ledger_status == "dropped_cooldown"


def test_cooldown_edges() -> None:
    assert not cooling_down(None, 1000, 60)
    assert not cooling_down(1000, 1000, 0)
    assert cooling_down(0, 59_999, 60)
    assert not cooling_down(0, 60_000, 60)
    assert cooling_down(60_000, 1, 60)  # an older signal close to the last one is cooling down too


def test_keys_and_entries_round_trip() -> None:
    signal = make_signal(symbol="ETH-USD", timeframe="5m", rule="ema_cross", side="SELL")
    assert ledger_key(signal.signal_id) == f"ledger:{signal.signal_id}"
    assert cooldown_key("team", signal) == "cooldown:team:ETH-USD@coinbase:5m:ema_cross:SELL"
    entry = LedgerEntry("dead_lettered", 123, 4, "http_400")
    assert LedgerEntry.from_state(entry.to_state()) == entry
    assert LedgerEntry.from_state({"status": "delivered", "at_ms": 5}) == LedgerEntry("delivered", 5)


@given(st.lists(st.integers(min_value=0, max_value=7200), min_size=1, max_size=60),
       st.integers(min_value=1, max_value=900))
def test_deliveries_of_a_key_are_at_least_a_cooldown_apart(gaps: list[int], cooldown_s: int) -> None:
    """Property: feeding a stream of signals in event-time order through decide + the state updates the
    lane makes, the delivered ones are pairwise >= cooldown apart and the first is always delivered."""
    subs = subscriptions({"name": "s", "cooldown": cooldown_s})
    last: dict[str, int | None] = {}
    delivered: list[int] = []
    moment = T0
    for gap in gaps:
        moment += timedelta(seconds=gap)
        signal = make_signal(ts_event=moment)
        verdict = decide(signal, subs, None, last, moment, max_age_s=900)
        assert verdict.action in ("deliver", "cooldown")
        if verdict.action == "deliver":
            delivered.append(epoch_ms(moment))
            last["s"] = epoch_ms(moment)
    assert delivered[0] == epoch_ms(T0 + timedelta(seconds=gaps[0]))
    assert all(later - earlier >= cooldown_s * 1000 for earlier, later in zip(delivered, delivered[1:], strict=False))
