"""The inspector's verdict for each state a document can be in, from facts alone (no services)."""

from datetime import datetime, timezone

from indexing.models import IndexBlueprint
from indexing.observability.inspector import (
    DatabaseState, IndexCopy, Inspection, LetterRef, OutboxRow, OutboxState, StreamState,
)
from indexing.observability.verdict import judge

T = datetime(2026, 1, 5, 12, 1, 7, tzinfo=timezone.utc)


def doc(db_version=42, exists=True, copies=None, outbox=None, stream=None, letters=()):
    return Inspection(
        blueprint=IndexBlueprint(name="products", aggregate_type="product"), entity_id="123",
        database=DatabaseState(exists=exists, version=db_version if exists else None),
        outbox=outbox or OutboxState(relays_live=1),
        stream=stream or StreamState(topic="t", partition=2, lag=0, consumers_live=1),
        index=copies if copies is not None else [copy()], dead_letters=list(letters), audit=[])


def copy(version=42, deleted=False, found=True, searched=None, index="products_v1"):
    searched = version if searched is None and found and not deleted else searched
    return IndexCopy(index, "main", "live", "products_current", found=found, version=version if found else None,
                     deleted=deleted if found else None, searchable=found and not deleted and searched == version,
                     searched_version=searched)


def row(version=42, state="waiting", letter=None):
    return OutboxRow("e1", "PRODUCT_UPSERT", version, T, None if state == "waiting" else T, state, letter)


def test_all_agree():
    assert judge(doc()) == ("in_sync", "in sync: the database and 1 index copy agree at version 42")


def test_old_version_waiting_in_the_outbox_with_the_relay_down():
    state, line = judge(doc(copies=[copy(41)], outbox=OutboxState(rows=[row()], relays_live=0)))
    assert state == "waiting_in_outbox"
    assert line == ("products_v1 version 41 < database 42; the event v42 is waiting in the outbox since "
                    "12:01:07 UTC; the relay is down (no relay heartbeat)")


def test_dead_lettered_by_the_relay_or_the_consumer():
    relayed = OutboxState(rows=[row(state="dead_lettered", letter=7)], relays_live=1)
    assert judge(doc(copies=[copy(found=False)], outbox=relayed))[0] == "dead_lettered"
    letter = LetterRef(9, "consumer", "mapping_rejected", "pending", 42, "products_v1", T, "strict")
    state, line = judge(doc(copies=[copy(41)], outbox=OutboxState(rows=[row(state="published")]), letters=[letter]))
    assert state == "dead_lettered" and "mapping_rejected (dead letter #9)" in line
    # A replayed or older letter explains nothing about version 42.
    old = LetterRef(8, "consumer", "schema_invalid", "pending", 40, "", T, "")
    assert judge(doc(copies=[copy(41)], outbox=OutboxState(rows=[row(state="published")]), letters=[old]))[0] == "stale"


def test_published_and_waiting_in_kafka_or_without_a_consumer():
    published = OutboxState(rows=[row(state="published")], relays_live=1)
    state, line = judge(doc(copies=[copy(41)], outbox=published, stream=StreamState("t", 2, lag=17, consumers_live=1)))
    assert state == "in_kafka" and "partition 2" in line and "17 message(s)" in line
    state, line = judge(doc(copies=[copy(41)], outbox=published, stream=StreamState("t", 2, lag=17, consumers_live=0)))
    assert state == "no_consumer" and line.endswith("no consumer is running")


def test_missing_without_a_trace_asks_for_a_reindex():
    state, line = judge(doc(copies=[copy(found=False)], outbox=OutboxState(rows=[row(state="published")])))
    assert state == "missing" and "re-index this document" in line
    state, line = judge(doc(copies=[copy(found=False)], outbox=OutboxState(rows=[])))
    assert state == "missing" and "no outbox row carries v42" in line


def test_tombstones():
    assert judge(doc(exists=False, copies=[copy(43, deleted=True)]))[0] == "deleted"
    assert judge(doc(exists=False, copies=[copy(found=False)]))[0] == "deleted"
    state, line = judge(doc(copies=[copy(44, deleted=True)]))
    assert state == "tombstone_ahead" and "only a new write of the row" in line
    assert judge(doc(exists=False, copies=[copy(42)], outbox=OutboxState(rows=[])))[0] == "orphaned"
    # Deleted, but the last refresh still shows the live document to searches.
    assert judge(doc(exists=False, copies=[copy(43, deleted=True, searched=42)]))[0] == "awaiting_refresh"


def test_indexed_but_not_searchable_yet():
    state, line = judge(doc(copies=[copy(42, searched=41)]))
    assert state == "awaiting_refresh" and "search sees v41" in line


def test_a_sidecar_copy_behind_the_main_one_is_named():
    copies = [copy(42), copy(41, index="products_v1_sidecar")]
    state, line = judge(doc(copies=copies, outbox=OutboxState(rows=[row(state="published")])))
    assert state == "stale" and line.startswith("products_v1_sidecar version 41 < database 42")
