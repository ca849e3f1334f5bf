"""The per-process cap on read-your-writes waits: a semaphore that never blocks and follows its setting."""

import threading

from indexing.pipeline.wait_limits import ProcessSlots


def test_slots_are_refused_past_the_limit_and_given_back():
    slots = ProcessSlots(limit=lambda: 2)
    assert slots.take() and slots.take()
    assert not slots.take()
    slots.give_back()
    assert slots.take()
    assert slots.taken == 2


def test_a_changed_limit_applies_at_once():
    limit = [1]
    slots = ProcessSlots(limit=lambda: limit[0])
    assert slots.take() and not slots.take()
    limit[0] = 3
    assert slots.take() and slots.take() and not slots.take()


def test_concurrent_takers_never_exceed_the_limit():
    slots = ProcessSlots(limit=lambda: 5)
    results = []
    barrier = threading.Barrier(50)

    def take():
        barrier.wait()
        results.append(slots.take())

    threads = [threading.Thread(target=take) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 5 and slots.taken == 5
