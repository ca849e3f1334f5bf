"""The commit rule's arithmetic: next offset = highest resolved + 1, per partition, only for partitions still owned."""

from indexing.pipeline.consumer import commit_offsets
from indexing.blueprints.contracts import Incoming


def msg(partition, offset, topic="t"):
    return Incoming(topic, partition, offset, b"k", b"v")


def as_tuples(offsets):
    return [(tp.topic, tp.partition, tp.offset) for tp in offsets]


def test_next_offset_is_the_highest_plus_one_per_partition_whatever_the_order():
    batch = [msg(0, 7), msg(1, 3), msg(0, 5), msg(0, 9), msg(1, 2)]
    assert as_tuples(commit_offsets(batch, {("t", 0), ("t", 1)})) == [("t", 0, 10), ("t", 1, 4)]


def test_lost_partitions_are_never_committed():
    batch = [msg(0, 1), msg(1, 1), msg(2, 1)]
    assert as_tuples(commit_offsets(batch, {("t", 1)})) == [("t", 1, 2)]


def test_nothing_owned_or_nothing_consumed_commits_nothing():
    assert commit_offsets([msg(0, 1)], set()) == []
    assert commit_offsets([], {("t", 0)}) == []


def test_topics_are_kept_apart():
    batch = [msg(0, 4, "a"), msg(0, 8, "b")]
    assert as_tuples(commit_offsets(batch, {("a", 0), ("b", 0)})) == [("a", 0, 5), ("b", 0, 9)]
