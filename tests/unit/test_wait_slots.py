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


def test_each_index_of_an_answer_says_searchable_refreshing_or_not_indexed():
    from indexing.pipeline.visibility import IndexState, Outcome

    at = 1000.0
    answer = Outcome("timeout", 5000.0, 5200.0, [
        IndexState("products_v3_sidecar", 7, at - 2.0, 1.0, at - 1.0),  # acknowledged, refreshed since
        IndexState("products_v3", 7, at - 2.0, 30.0, at + 28.0),  # acknowledged, its 30 s refresh still due
        IndexState("products_v4", None, None, 1.0, None),  # being built, not written yet
    ], at=at).as_json()
    status = {i["index"]: (i["status"], i["expected_in_ms"]) for i in answer["indices"]}
    assert status == {"products_v3_sidecar": ("searchable", 0.0), "products_v3": ("refreshing", 28000.0),
                      "products_v4": ("not_indexed", None)}
    assert answer["pending"] == ["products_v3", "products_v4"]
    assert answer["waited_on"] == ["products_v3", "products_v3_sidecar", "products_v4"]
