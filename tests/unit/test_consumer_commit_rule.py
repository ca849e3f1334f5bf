"""The consumer's commit rule against an in-memory broker: offsets are committed only for resolved batches,
in poll order; a failed batch holds back the ones polled after it, which are rewound and replayed; a stop
commits only what was resolved; a long bulk is waited for with the partitions paused."""

import threading
import time

import pytest

from indexing.pipeline import consumer as consumer_module
from indexing.pipeline.consumer import ConsumerStopping
from tests.unit.fake_broker import FakeBroker, FakeProcessor, make_consumer, run_until


@pytest.fixture
def two_bulks_in_flight(settings):
    settings.SEARCHSYNC = {**getattr(settings, "SEARCHSYNC", {}), "BULKS_IN_FLIGHT": 2}


def committed_prefix_is_resolved(broker: FakeBroker) -> None:
    """At every commit, each message below the committed offset had been written by a bulk that succeeded."""
    done: set[tuple[int, int]] = set()
    for event in broker.events:
        if event[0] == "bulk done":
            done.update(event[1])
        elif event[0] == "commit":
            for partition, offset in event[1]:
                missing = [o for o in range(offset) if (partition, o) not in done]
                assert not missing, f"committed {partition}@{offset} before {missing[:5]} were resolved"


def test_offsets_are_committed_for_resolved_batches_in_poll_order(two_bulks_in_flight):
    broker = FakeBroker({0: 10, 1: 10})
    second_written = threading.Event()

    def bulk(batch, attempt):
        if batch[0] == (0, 0):
            second_written.wait(5)  # the first batch finishes after the one polled after it
        else:
            second_written.set()

    processor = FakeProcessor(broker, bulk)
    consumer = make_consumer(broker, processor, batch_size=4)
    run_until(consumer, broker.all_committed)

    committed_prefix_is_resolved(broker)
    commits = broker.commits()
    events = broker.events
    first_done = events.index(("bulk done", processor.prepared[0]))
    second_done = events.index(("bulk done", processor.prepared[1]))
    first_commit = next(i for i, e in enumerate(events) if e[0] == "commit")
    # The second batch was written first, yet nothing was committed until the first one was.
    assert second_done < first_done < first_commit
    assert commits[0] == [(0, 2), (1, 2)]
    for partition in (0, 1):
        offsets = [o for c in commits for p, o in c if p == partition]
        assert offsets == sorted(offsets), f"partition {partition} committed out of order: {offsets}"
    assert broker.committed_offsets == {0: 10, 1: 10}
    assert not any(e[0] == "seek" for e in broker.events)
    assert broker.closed


def test_a_failed_batch_holds_back_later_ones_which_are_rewound_and_replayed(two_bulks_in_flight):
    broker = FakeBroker({0: 6, 1: 6})
    second_written = threading.Event()

    def bulk(batch, attempt):
        if batch[0] == (0, 0) and attempt == 1:
            second_written.wait(5)
            raise RuntimeError("the first bulk fails after the second was written")
        if batch[0] != (0, 0):
            second_written.set()

    processor = FakeProcessor(broker, bulk)
    consumer = make_consumer(broker, processor, batch_size=4)
    run_until(consumer, broker.all_committed)

    committed_prefix_is_resolved(broker)
    events = broker.events
    failed = next(i for i, e in enumerate(events) if e[0] == "bulk failed")
    later_done = next(i for i, e in enumerate(events) if e[0] == "bulk done")
    assert later_done < failed  # the later batch was written before the earlier one failed...
    assert not any(e[0] == "commit" for e in events[:failed])  # ...and nothing was committed for it
    # Rewound to the first offset of the failed batch on each partition (0 and 1 both start at offset 0).
    seeks = [e[1:] for e in events if e[0] == "seek"]
    assert sorted(seeks) == [(0, 0), (1, 0)]
    # The failed batch and the one after it were polled again, from the start.
    first_batch = processor.prepared[0]
    assert processor.prepared.count(first_batch) == 2
    assert processor.attempts[first_batch[0]] == 2
    assert broker.committed_offsets == {0: 6, 1: 6}


def test_a_stop_commits_only_resolved_batches(two_bulks_in_flight):
    broker = FakeBroker({0: 12})
    stop = threading.Event()
    stop_seen = threading.Event()
    third_written = threading.Event()

    def bulk(batch, attempt):
        if batch[0] == (0, 4):
            # Waits until the consumer is stopped, as the sink's retry wait does.
            stop.wait(10)
            stop_seen.set()
            raise ConsumerStopping()
        if batch[0] == (0, 8):
            third_written.set()

    processor = FakeProcessor(broker, bulk)
    consumer = make_consumer(broker, processor, batch_size=4)
    run_until(consumer, third_written.is_set, stop=stop)

    assert stop_seen.is_set()
    committed_prefix_is_resolved(broker)
    # The first batch is committed; the second never resolved, so the third (written) is held back.
    assert broker.committed_offsets == {0: 4}
    assert broker.commits() == [[(0, 4)]]
    assert broker.closed


def test_partitions_are_paused_while_a_slow_bulk_is_waited_for_and_resumed_after():
    broker = FakeBroker({0: 8, 1: 8})

    def bulk(batch, attempt):
        if batch[0] == (0, 0):
            time.sleep(1.5)  # past the one second after which the consumer polls with its partitions paused

    processor = FakeProcessor(broker, bulk)
    consumer = make_consumer(broker, processor, batch_size=4)
    run_until(consumer, broker.all_committed)

    events = broker.events
    slow_done = events.index(("bulk done", processor.prepared[0]))
    pause = next(i for i, e in enumerate(events) if e[0] == "pause")
    resume = next(i for i, e in enumerate(events) if e[0] == "resume")
    assert events[pause][1] == [0, 1] and events[resume][1] == [0, 1]
    assert pause < slow_done < resume
    # The group kept us: the consumer went on polling while paused, and took nothing meanwhile.
    assert broker.polls_while_paused > 0
    assert not any(e[0] == "consumed" for e in events[pause:resume])
    assert not broker.paused
    committed_prefix_is_resolved(broker)
    assert broker.committed_offsets == {0: 8, 1: 8}


def test_figures_of_batches_in_quick_succession_are_recorded_together_and_none_lost():
    broker = FakeBroker({0: 200})
    processor = FakeProcessor(broker, lambda batch, attempt: time.sleep(0.005))
    consumer = make_consumer(broker, processor, batch_size=5)
    run_until(consumer, lambda: processor.recorded == 40)

    assert broker.committed_offsets == {0: 200}
    assert processor.recorded == 40 == consumer.batches
    # 40 batches of 5 ms each in about 0.2 s: a Redis round trip for several of them, not one each.
    assert len(processor.record_calls) < 20
    assert max(processor.record_calls) > 1


def test_figures_still_unrecorded_at_a_stop_are_recorded_on_the_way_out(monkeypatch):
    monkeypatch.setattr(consumer_module, "RECORD_INTERVAL_S", 60.0)  # nothing is due while batches keep coming
    broker = FakeBroker({0: 5000})
    processor = FakeProcessor(broker, lambda batch, attempt: time.sleep(0.002))
    consumer = make_consumer(broker, processor, batch_size=5)
    run_until(consumer, lambda: consumer.batches >= 10)

    assert len(processor.record_calls) >= 2  # the first batch's figures at once, the rest at the stop
    assert processor.recorded == consumer.batches
