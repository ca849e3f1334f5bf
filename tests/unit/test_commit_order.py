"""The commit rule with batches in flight: offsets are released in poll order, only for a resolved prefix."""

from indexing.pipeline.commit_order import CommitOrder
from indexing.pipeline.consumer import commit_offsets
from indexing.blueprints.contracts import Incoming


def batch(partition, *offsets):
    return [Incoming("t", partition, o, b"k", b"v") for o in offsets]


def offsets(messages):
    return [(tp.partition, tp.offset) for tp in commit_offsets(messages, {("t", 0), ("t", 1)})]


def test_a_later_batch_resolved_first_waits_for_the_earlier_one():
    order = CommitOrder()
    first, second = order.register(batch(0, 1, 2)), order.register(batch(0, 3, 4))
    order.resolve(second)
    assert order.releasable() == []
    order.resolve(first)
    assert offsets(order.releasable()) == [(0, 5)]
    assert order.in_flight() == 0


def test_release_stops_at_the_first_unresolved_batch():
    order = CommitOrder()
    a, b, c = order.register(batch(0, 1)), order.register(batch(1, 7)), order.register(batch(0, 2))
    order.resolve(a)
    order.resolve(c)
    assert offsets(order.releasable()) == [(0, 2)]
    order.resolve(b)
    assert offsets(order.releasable()) == [(0, 3), (1, 8)]


def test_a_failed_batch_holds_back_every_later_one_and_all_are_rewound():
    order = CommitOrder()
    a, b, c = order.register(batch(0, 1)), order.register(batch(0, 2)), order.register(batch(1, 5))
    order.resolve(a)
    order.fail(b)
    order.resolve(c)
    assert offsets(order.releasable()) == [(0, 2)]  # only the batch before the failure
    assert order.releasable() == []
    assert order.blocked_by_failure()
    rewound = order.discard_all()
    assert sorted((m.partition, m.offset) for m in rewound) == [(0, 2), (1, 5)]
    assert not order.holds(c) and not order.blocked_by_failure()


def test_a_failure_before_anything_resolved_releases_nothing():
    order = CommitOrder()
    a = order.register(batch(0, 1))
    b = order.register(batch(0, 2))
    order.resolve(b)
    order.fail(a)
    assert order.releasable() == []
    assert [m.offset for m in order.discard_all()] == [1, 2]
