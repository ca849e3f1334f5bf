"""Sidecar-only writes, planned without services: when the main part is left out, and when it never is."""

from datetime import datetime, timezone

from indexing.blueprints.contracts import Event
from indexing.models import DeleteMode, IndexBlueprint
from indexing.pipeline.bulk_sink import SinkResult
from indexing.pipeline.sidecar_only import MainWrites, main_digest
from indexing.pipeline.writer import WriteTarget, _remember_main_writes, plan_writes

MAPPINGS = {"properties": {f: {"type": "keyword"} for f in ("id", "tenant_id", "version", "updated_at", "deleted",
                                                              "title", "price")}}
TARGET = WriteTarget("products_v1", MAPPINGS, {"name": "products_v1_sidecar", "fields": ["price"], "mappings": MAPPINGS})
BLUEPRINT = IndexBlueprint(name="products", aggregate_type="product", delete_mode=DeleteMode.TOMBSTONE)


def build(event: Event) -> dict:
    return {"id": event.entity_id, "tenant_id": "t", "version": event.version, "updated_at": f"u{event.version}",
            "deleted": False, **event.payload}


def event(version: int, title="Tea", price=100, entity="1", kind="PRODUCT_UPSERT") -> Event:
    return Event(f"e{version}", kind, entity, "t", version, datetime(2026, 1, 1, tzinfo=timezone.utc),
                 {"title": title, "price": price})


def plan(memory, *events, superseding=frozenset()):
    return plan_writes(BLUEPRINT, [TARGET], [(None, e) for e in events], builder=build, main_writes=memory,
                       superseding=superseding)


def answered(plan_, acked_at=10.0, stale=(), failed=()):
    """The plan's bulk answered: everything indexed but what is named stale."""
    result = SinkResult()
    for action in plan_.actions:
        (result.stale if action.index in stale else result.indexed).append(action)
    result.acked_at = acked_at
    _remember_main_writes(plan_, result)
    return result


def main_of(event_: Event) -> bytes:
    """The digest of the event's main part (the sidecar's field left out)."""
    return main_digest({k: v for k, v in build(event_).items() if k != "price"})


def indices(plan_) -> list[str]:
    return [a.index for a in plan_.actions]


def test_a_price_change_after_a_written_main_part_writes_only_the_sidecar():
    memory = MainWrites(capacity=100)
    answered(plan(memory, event(1)), acked_at=10.0)
    second = plan(memory, event(2, price=90))
    assert indices(second) == ["products_v1_sidecar"]
    assert second.unchanged == [("products_v1", event(2, price=90), 10.0)]  # acknowledged as of the main write
    answered(second)
    # A title change writes both again.
    assert indices(plan(memory, event(3, title="Green tea", price=90))) == ["products_v1", "products_v1_sidecar"]


def test_without_a_remembered_write_or_without_memory_both_parts_are_written():
    assert indices(plan(MainWrites(capacity=100), event(2, price=90))) == ["products_v1", "products_v1_sidecar"]
    off = MainWrites(capacity=0)
    answered(plan(off, event(1)))
    assert indices(plan(off, event(2, price=90))) == ["products_v1", "products_v1_sidecar"]
    assert len(off) == 0


def test_a_replay_or_a_re_emit_at_a_remembered_version_is_written_in_full():
    memory = MainWrites(capacity=100)
    answered(plan(memory, event(1)))
    answered(plan(memory, event(2, price=90)))  # skipped the main part: remembered at v2
    # Reconciliation re-emits the row at its version 2: the main part is written, so a drifted main index is repaired.
    assert indices(plan(memory, event(2, price=90))) == ["products_v1", "products_v1_sidecar"]
    assert indices(plan(MainWrites(capacity=100), event(1))) == ["products_v1", "products_v1_sidecar"]


def test_an_entity_with_several_events_in_the_batch_is_written_in_full():
    memory = MainWrites(capacity=100)
    answered(plan(memory, event(1)))
    assert indices(plan(memory, event(3, price=80), superseding={"1"})) == ["products_v1", "products_v1_sidecar"]


def test_a_main_write_in_flight_or_answered_stale_is_forgotten():
    memory = MainWrites(capacity=100)
    answered(plan(memory, event(1)))
    in_flight = plan(memory, event(2, title="Green tea"))  # not answered yet
    # The next batch, prepared while that bulk is in flight, goes back to the first title: it must be written.
    assert indices(plan(memory, event(3, title="Tea"))) == ["products_v1", "products_v1_sidecar"]
    answered(in_flight, stale={"products_v1"})
    assert memory.unchanged("products_v1", "1", 4, main_of(event(4, title="Green tea"))) is None


def test_bulks_answered_out_of_order_keep_the_newer_content():
    memory = MainWrites(capacity=100)
    older, newer = plan(memory, event(1, title="A")), plan(memory, event(2, title="B"))
    answered(newer, acked_at=20.0)
    answered(older, acked_at=21.0)
    assert memory.unchanged("products_v1", "1", 3, main_of(event(3, title="A"))) is None
    assert memory.unchanged("products_v1", "1", 3, main_of(event(3, title="B"))).acked_at == 20.0


def test_a_delete_always_reaches_the_main_index():
    memory = MainWrites(capacity=100)
    answered(plan(memory, event(1)))
    gone = plan(memory, Event("e2", "PRODUCT_DELETE", "1", "t", 2, datetime(2026, 1, 1, tzinfo=timezone.utc), {}),
                )
    assert "products_v1" in indices(gone)


def test_the_memory_is_bounded_least_recently_written_first_out():
    memory = MainWrites(capacity=2)
    for entity in ("1", "2", "3"):
        memory.remember("i", entity, 1, b"d", 1.0)
    assert memory.unchanged("i", "1", 2, b"d") is None
    assert memory.unchanged("i", "3", 2, b"d") is not None
    assert len(memory) == 2


def test_the_digest_ignores_the_fields_every_write_changes():
    assert main_digest({"title": "Tea", "version": 1, "updated_at": "a"}) == \
        main_digest({"title": "Tea", "version": 2, "updated_at": "b"})
    assert main_digest({"title": "Tea"}) != main_digest({"title": "Green tea"})


def test_the_freshness_canary_is_always_written_in_full():
    memory = MainWrites(capacity=100)
    answered(plan(memory, event(1, entity="__canary__")))
    # The same payload at a newer version: its main part must still be searchable at that version.
    assert indices(plan(memory, event(2, entity="__canary__"))) == ["products_v1", "products_v1_sidecar"]
