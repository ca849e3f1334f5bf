"""Within a batch only the highest version per entity is written; the rest are superseded."""

from datetime import datetime, timezone

from indexing.blueprints.contracts import Event, Incoming
from indexing.pipeline.processor import newest_per_entity


def pair(entity, version, offset):
    event = Event(f"e{offset}", "PRODUCT_UPSERT", entity, "t", version, datetime.now(timezone.utc), {})
    return Incoming("t", 0, offset, entity.encode(), b""), event


def test_highest_version_wins_whatever_the_order():
    batch = [pair("1", 3, 0), pair("1", 5, 1), pair("2", 1, 2), pair("1", 4, 3)]
    winners, superseded = newest_per_entity(batch)
    assert {e.entity_id: e.version for _, e in winners} == {"1": 5, "2": 1}
    assert superseded == 2


def test_a_duplicate_version_keeps_the_first_message():
    batch = [pair("1", 2, 0), pair("1", 2, 1)]
    winners, superseded = newest_per_entity(batch)
    assert [m.offset for m, _ in winners] == [0] and superseded == 1


def test_empty_batch():
    assert newest_per_entity([]) == ([], 0)
