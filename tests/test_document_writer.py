"""One document writer for the live consumer and backfills: the same size limit, the same typed dead
letters, the same unmapped-field records, the same version handling (stale = counted, not retried)."""

from datetime import datetime, timezone

import pytest

from backfills import services
from backfills.models import Backfill
from catalog import services as catalog
from indexing.blueprints.contracts import Event, Incoming
from indexing.blueprints.documents import register_builder, unregister_builder
from indexing.engines import get_engine
from indexing.models import DeadLetter, UnmappedField
from indexing.pipeline.bulk_sink import BulkSink
from indexing.pipeline.writer import write_documents, write_targets

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


def upsert(entity, version, **payload):
    return Event(f"ev-{entity}-{version}", "PRODUCT_UPSERT", str(entity), "t", version, datetime.now(timezone.utc),
                 {"title": f"P{entity}", "price_minor": 1, "available_qty": 1, **payload})


@pytest.fixture
def extra_field_builder(request, products_blueprint):
    from catalog.documents import build_product

    @register_builder("products-with-extra")
    def build(event):
        if event.payload.get("explode"):
            raise ValueError("cannot build")
        return {**build_product(event), "colour": "red", "description": event.payload.get("description", "")}

    request.addfinalizer(lambda: unregister_builder("products-with-extra"))
    products_blueprint.document_builder = "products-with-extra"
    products_blueprint.save()
    return products_blueprint


def test_every_event_is_resolved_with_typed_outcomes(extra_field_builder, engine, settings):
    blueprint = extra_field_builder
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "MAX_DOCUMENT_BYTES": 2000}
    targets = write_targets(blueprint)
    sink = BulkSink.from_settings(get_engine())
    message = Incoming(blueprint.topic, 0, 42, b"1", b"raw bytes")
    first = write_documents(blueprint, targets, [(message, upsert(1, 5))], sink)
    assert [e.entity_id for e in first.indexed] == ["1"] and not first.dead

    events = [(message, upsert(1, 4)),                                # older than the index: stale
              (None, upsert(2, 1, explode=True)),                     # builder error
              (None, upsert(3, 1, description="x" * 5000)),           # too large for the limit
              (None, upsert(4, 1))]                                   # fine
    result = write_documents(blueprint, targets, events, sink)
    assert result.stale == 1 and [e.entity_id for e in result.indexed] == ["4"]
    assert {(d.entity_id, d.reason) for d in result.dead} == {("2", DeadLetter.Reason.BUILD_FAILED),
                                                              ("3", DeadLetter.Reason.TOO_LARGE)}
    stored = {d.entity_id: d for d in DeadLetter.objects.all()}
    assert stored["3"].reason == "too_large" and "limit 2000" in stored["3"].error
    assert stored["3"].target_index == targets[0].name and stored["3"].version == 1
    # Not from Kafka: kept as the event it would have been, so a replay takes the live path.
    assert stored["2"].partition == -1 and b'"entity_id": "2"' in bytes(stored["2"].raw_value)
    unmapped = UnmappedField.objects.get(index_name=targets[0].name, field="colour")
    assert unmapped.count >= 3 and unmapped.sample == "red"


def test_backfills_apply_the_document_size_limit(products_blueprint, settings, eager_celery):
    catalog.create_product(tenant_id="t", title="Small", price_minor=1, available_qty=1)
    catalog.create_product(tenant_id="t", title="Huge", price_minor=1, available_qty=1, description="y" * 5000)
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "MAX_DOCUMENT_BYTES": 2000}
    backfill = services.schedule(products_blueprint)
    backfill.refresh_from_db()
    assert backfill.status == Backfill.Status.COMPLETED
    letter = DeadLetter.objects.get()
    assert letter.reason == DeadLetter.Reason.TOO_LARGE and letter.target_index == backfill.target_index.name
    engine = get_engine()
    engine.refresh(backfill.target_index.name)
    titles = {h["_source"]["title"] for h in engine.scan(backfill.target_index.name)}
    assert "Small" in titles and "Huge" not in titles


def test_a_batch_over_the_byte_bound_is_sent_in_several_requests_and_written_whole(products_blueprint, settings):
    # A node refuses a body over its http.max_content_length as a whole (413): a batch of large
    # documents must be split by size, not dead-letter every event in it as too large.
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "BULK_MAX_BYTES": 20_000}
    engine = get_engine()
    sent = []
    send = engine._send_bulk
    engine._send_bulk = lambda body: sent.append(len(body)) or send(body)
    try:
        sink = BulkSink.from_settings(engine)
        targets = write_targets(products_blueprint)
        events = [(None, upsert(i, 1, description="d" * 3000)) for i in range(1, 31)]
        result = write_documents(products_blueprint, targets, events, sink)
    finally:
        engine._send_bulk = send
    assert sorted(int(e.entity_id) for e in result.indexed) == list(range(1, 31)) and not result.dead
    assert len(sent) >= 5 and max(sent) <= 20_000 + 4000
    engine.refresh(targets[0].name)
    assert engine.count(targets[0].name) == 30
