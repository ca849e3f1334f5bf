"""Invariants 6 and 8: a poison message never stalls its partition, keeps its raw bytes in the
dead letters, and unmapped fields are dropped and recorded, not fatal."""

import json

import pytest

from indexing.observability.lag import consumer_lag
from indexing.models import DeadLetter, UnmappedField
from indexing.core.topics import ensure_topic
from tests.helpers import pipeline, wait_until
from tests.kafka_helpers import event, produce


@pytest.fixture
def topic(products_blueprint):
    ensure_topic(products_blueprint.topic)
    return products_blueprint.topic


def test_poison_messages_are_dead_lettered_and_the_rest_indexed(products_blueprint, engine, topic):
    index = products_blueprint.live_index().name
    garbage = b"\xff\xfe not json at all"
    schema_invalid = event(2, 1)
    del schema_invalid["payload"]["price_minor"]
    out_of_range = event(3, 1, available_qty=3_000_000_000)  # valid JSON Schema, rejected by the `integer` mapping
    # Everything on one partition, poison in the middle: the messages after it must still be indexed.
    produce(topic, [
        ("1", event(1, 1)),
        ("x", garbage),
        ("2", schema_invalid),
        ("3", out_of_range),
        ("4", event(4, 1)),
        ("5", event(5, 1, colour="red", dimensions={"w": 3})),
    ], partition=0)

    with pipeline(products_blueprint, relay=False):
        wait_until(lambda: DeadLetter.objects.count() == 3 and engine.count(index) >= 3, message="dead letters")
        wait_until(lambda: all(p.lag == 0 for p in consumer_lag(products_blueprint)), message="offsets committed")

    engine.refresh(index)
    assert sorted(h["_id"] for h in engine.scan(index)) == ["1", "4", "5"]
    letters = {d.reason: d for d in DeadLetter.objects.all()}
    assert set(letters) == {"undecodable", "schema_invalid", "mapping_rejected"}
    assert bytes(letters["undecodable"].raw_value) == garbage
    assert bytes(letters["undecodable"].key) == b"x"
    assert "price_minor" in letters["schema_invalid"].error
    assert json.loads(bytes(letters["schema_invalid"].raw_value)) == schema_invalid
    assert letters["mapping_rejected"].target_index == index
    assert letters["mapping_rejected"].entity_id == "3"
    assert {(d.partition, d.offset) for d in letters.values()} == {(0, 1), (0, 2), (0, 3)}

    # The unknown payload fields were dropped, the document kept, and the drop recorded for operators.
    doc = engine.get(index, "5")["_source"]
    assert "colour" not in doc and "dimensions" not in doc
    recorded = {u.field: u for u in UnmappedField.objects.filter(index_name=index)}
    assert set(recorded) == {"colour", "dimensions"}
    assert recorded["colour"].count == 1 and recorded["colour"].sample == "red"


def test_batch_keeps_only_the_newest_version_per_entity(products_blueprint, engine, topic):
    from indexing.core import stats

    index = products_blueprint.live_index().name
    produce(topic, [("9", event(9, v, title=f"v{v}")) for v in (3, 1, 5, 2, 4)], partition=1)
    with pipeline(products_blueprint, relay=False):
        wait_until(lambda: (engine.get(index, "9") or {}).get("_version") == 5, message="v5 indexed")
        wait_until(lambda: all(p.lag == 0 for p in consumer_lag(products_blueprint)), message="offsets committed")
    assert engine.get(index, "9")["_source"]["title"] == "v5"
    counters = stats.counters(products_blueprint.name)
    # However the five arrive in batches, each one is resolved as indexed, stale or superseded.
    assert counters.get("indexed", 0) + counters.get("stale", 0) + counters.get("superseded", 0) == 5


@pytest.fixture
def broken_builder(request):
    """A builder with a bug, registered for this test only."""
    from indexing.blueprints.documents import register_builder, unregister_builder

    @register_builder("broken-products")
    def broken(event):
        raise KeyError("brand_name")

    request.addfinalizer(lambda: unregister_builder("broken-products"))
    return "broken-products"


def test_fixed_and_replayed_dead_letter_is_indexed(products_blueprint, engine, topic, admin_client, broken_builder):
    """The operator's loop: a builder bug dead-letters events; after the fix, replay indexes them."""
    products_blueprint.document_builder = broken_builder
    products_blueprint.save()
    index = products_blueprint.live_index().name
    produce(topic, [("21", event(21, 1)), ("22", event(22, 1))])
    with pipeline(products_blueprint, relay=False):
        wait_until(lambda: DeadLetter.objects.filter(reason="build_failed").count() == 2, message="dead letters")
        products_blueprint.document_builder = "products"
        products_blueprint.save()
        ids = list(DeadLetter.objects.values_list("pk", flat=True))
        response = admin_client.post("/api/v1/dead-letters/replay/", {"ids": ids}, content_type="application/json")
        assert response.status_code == 200, response.content
        assert response.json() == {"replayed": 2}
        wait_until(lambda: engine.get(index, "21") and engine.get(index, "22"), message="replayed events indexed")
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"replayed"}
    # A replayed letter cannot be replayed twice.
    again = admin_client.post(f"/api/v1/dead-letters/{ids[0]}/replay/")
    assert again.status_code == 400
