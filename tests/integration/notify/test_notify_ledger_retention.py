"""The delivery ledger stays bounded and still stops every re-send inside the window (processors/notify/retention.py).

A lane's processor on a real Quix state store (in memory) and an injected clock, as in
test_notify_lane_processor.py: a long feed of one instrument's signals (a signal every 10 s of event
time for ~8 hours) keeps the ledger at the signals of the last ``2 × NOTIFY_MAX_AGE_S``; after a
restart (the checkpoint committed, a new processor on the same store) a signal inside the window is
a duplicate, and one whose entry was dropped is stale: neither is sent again. A renotify run keeps
everything; a minute with more signals than a chunk holds is indexed in chunks and dropped whole.
"""

from __future__ import annotations

from datetime import timedelta

from quixstreams.state.memory import MemoryStore

from processors.notify.ledger import LedgerEntry, epoch_ms, ledger_key
from processors.notify.retention import BUCKET_MS, CHUNK, INDEX_KEY, LedgerRetention, ids_key
from tests.integration.notify.test_notify_lane_processor import T0, Lane, receiver, webhook  # noqa: F401
from tests.support.fake_receivers.http import HttpReceiver
from tests.unit.notify.factories import make_signal

MAX_AGE_S = 900
STEP = timedelta(seconds=10)


def test_the_ledger_keeps_only_the_last_two_windows_over_a_long_feed(capsys) -> None:
    lane = Lane({"type": "console"}, max_age_s=MAX_AGE_S)
    signals = [make_signal(ts_event=T0 + index * STEP) for index in range(3_000)]
    sizes = []
    for index, signal in enumerate(signals):
        lane.now = signal.ts_event + timedelta(seconds=1)
        lane.feed(signal)
        if index % 500 == 499:
            lane.restart()  # committed now and then, as a lane's checkpoints are
            sizes.append(sum(lane.ledger(seen) is not None for seen in signals[:index + 1]))
    bound = (2 * MAX_AGE_S + 60) // 10 + 1  # two windows of entries, plus the minute being filled
    assert max(sizes) <= bound, sizes
    assert all(lane.ledger(signal) is not None for signal in signals[-(2 * MAX_AGE_S // 10):])  # the window is kept
    index = lane.transaction.as_state(prefix=b"BTC-USD").get(INDEX_KEY)
    assert len(index) <= 2 * MAX_AGE_S // 60 + 2  # minutes, not signals
    assert lane.metric("ledger_pruned_total") == 3_000 - sizes[-1]
    assert lane.metric("deliveries_total") == 3_000
    capsys.readouterr()


def test_a_signal_inside_the_window_is_not_sent_again_after_a_restart(receiver: HttpReceiver) -> None:  # noqa: F811
    lane = Lane(webhook(receiver), max_age_s=MAX_AGE_S)
    first = make_signal(ts_event=T0)
    lane.now = T0 + timedelta(seconds=1)
    lane.feed(first)
    # Later signals of the same instrument keep the ledger moving (pruning runs at each one).
    for minute in range(1, 15):
        later = make_signal(ts_event=T0 + timedelta(minutes=minute))
        lane.now = later.ts_event + timedelta(seconds=1)
        lane.feed(later)
    lane.restart()
    lane.now = T0 + timedelta(seconds=MAX_AGE_S - 5)  # the first signal is still deliverable by age
    lane.feed(first)  # replayed after the restart
    assert [request.json()["signal_id"] for request in receiver.requests("/hook")].count(first.signal_id) == 1
    assert lane.metric("duplicates_suppressed_total") == 1

    # Much later its entry is dropped; replayed again it is stale, still not sent.
    for minute in range(15, 40):
        later = make_signal(ts_event=T0 + timedelta(minutes=minute))
        lane.now = later.ts_event + timedelta(seconds=1)
        lane.feed(later)
    lane.restart()
    assert lane.ledger(first) is None
    lane.feed(first)
    assert [request.json()["signal_id"] for request in receiver.requests("/hook")].count(first.signal_id) == 1
    assert lane.metric("skipped_stale_total") == 1


def test_a_renotify_run_never_drops_entries() -> None:
    lane = Lane({"type": "console"}, renotify=True, max_age_s=60)
    signals = [make_signal(ts_event=T0 + index * timedelta(minutes=1)) for index in range(30)]
    for signal in signals:
        lane.now = signal.ts_event + timedelta(hours=5)
        lane.feed(signal)
    assert all(lane.ledger(signal) is not None for signal in signals)
    assert lane.metric("ledger_pruned_total") == 0


def test_a_busy_minute_is_kept_in_chunks_and_dropped_whole() -> None:
    store = MemoryStore("default", "signals")
    store.assign_partition(0)
    state = store.start_partition_transaction(0).as_state(prefix=b"BTC-USD")
    retention = LedgerRetention(MAX_AGE_S)
    burst = [make_signal(ts_event=T0) for _ in range(2 * CHUNK + 5)]
    for number, signal in enumerate(burst):
        retention.remember(state, b"BTC-USD", signal, LedgerEntry("delivered", 0))
        if number % 100 == 99:
            assert retention.flush(T0) == 0  # checkpoints inside the burst
    assert retention.flush(T0) == 0
    bucket = str(epoch_ms(T0) // BUCKET_MS)
    assert state.get(INDEX_KEY) == {bucket: 3}
    assert [len(state.get_bytes(ids_key(int(bucket), chunk)).split(b"\n")) for chunk in range(3)] == [CHUNK, CHUNK, 5]
    later = make_signal(ts_event=T0 + timedelta(seconds=2 * MAX_AGE_S + 61))
    retention.remember(state, b"BTC-USD", later, LedgerEntry("delivered", 0))
    assert retention.flush(later.ts_event) == len(burst)
    assert all(state.get(ledger_key(signal.signal_id)) is None for signal in burst)
    assert state.get(INDEX_KEY) == {str(epoch_ms(later.ts_event) // BUCKET_MS): 1}
    assert state.get_bytes(ids_key(int(bucket), 0)) is None
