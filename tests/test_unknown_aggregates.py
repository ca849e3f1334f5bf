"""An event no blueprint consumes is never dropped in silence: the relay dead-letters an outbox row
of an aggregate type no blueprint declares (``unknown_aggregate``, with its bytes) and goes on with
the rows behind it; a replay once a blueprint for it exists gets it indexed. A consumer that reads
another aggregate's event on its topic dead-letters it the same way instead of indexing it."""

from __future__ import annotations

import json

import pytest

from catalog import brands
from indexing.blueprints.indices import ensure_live_index
from indexing.control.registry import ensure_blueprint
from indexing.core.topics import ensure_topic, topic_for
from indexing.models import DeadLetter, OutboxEvent
from indexing.observability.lag import consumer_lag
from indexing.outbox.relay import OutboxRelay
from tests.helpers import pipeline, wait_until
from tests.kafka_helpers import event, produce
from tests.test_relay_dead_letters import keys_in_topic, outbox_row

pytestmark = pytest.mark.django_db(transaction=True)


def test_outbox_row_of_an_unknown_aggregate_is_dead_lettered_and_delivered_by_a_replay_once_declared(
        isolated_pipeline, unique, engine, admin_client, operator_api, product_aggregate_declared):
    # A disabled blueprint still declares its aggregate: its events go to Kafka and wait for it.
    assert not product_aggregate_declared.enabled
    outbox_row("1")
    brand = brands.create_brand(tenant_id="t", name="Acme", country="SE")  # no blueprint consumes brands yet
    outbox_row("2")
    OutboxRelay(batch_size=10).drain()

    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists(), "outbox stuck"
    assert sorted(keys_in_topic(topic_for("product"), 2)) == ["1", "2"], "the rows behind it were not published"
    letter = DeadLetter.objects.get()
    assert (letter.reason, letter.source, letter.status) == ("unknown_aggregate", "outbox", "pending")
    assert letter.blueprint is None and letter.topic == topic_for("brand") and bytes(letter.key) == str(brand.pk).encode()
    sent = json.loads(bytes(letter.raw_value))
    assert (sent["event_type"], sent["entity_id"], sent["payload"]["name"]) == ("BRAND_UPSERT", str(brand.pk), "Acme")
    assert letter.event_id == str(OutboxEvent.objects.get(aggregate_type="brand").event_id)
    assert "'brand'" in letter.error

    # On the console's dead letter page, filtered by its reason.
    page = admin_client.get("/dead-letters/", {"reason": "unknown_aggregate", "status": "pending"}).content.decode()
    assert f"/dead-letters/{letter.pk}/" in page and "No blueprint consumes its aggregate type" in page
    assert f"outbox → {topic_for('brand')}" in page

    # A blueprint for brands now exists and runs: the replay re-publishes the bytes and they are indexed.
    blueprint = ensure_blueprint("brands", name=f"brands-{unique}")
    ensure_live_index(blueprint, engine)
    try:
        assert blueprint.topic == letter.topic
        with pipeline(blueprint, relay=False):
            replayed = operator_api.post(f"/api/v1/dead-letters/{letter.pk}/replay/")
            assert replayed.status_code == 200, replayed.content
            wait_until(lambda: engine.get(blueprint.read_alias, str(brand.pk)), timeout=60,
                       message="the replayed brand indexed")
        assert engine.get(blueprint.read_alias, str(brand.pk))["_source"]["name"] == "Acme"
        letter.refresh_from_db()
        assert letter.status == "replayed"
        assert DeadLetter.objects.count() == 1, "the replay was dead-lettered again"
    finally:
        for index in blueprint.indices.all():
            engine.delete_index(index.name)


def test_consumer_dead_letters_another_aggregates_event_on_its_topic_and_indexes_the_rest(products_blueprint,
                                                                                           engine):
    topic = products_blueprint.topic
    ensure_topic(topic)
    index = products_blueprint.live_index().name
    stray = event(2, 1, aggregate="BRAND")
    produce(topic, [("1", event(1, 1)), ("2", stray), ("3", event(3, 1))], partition=0)

    with pipeline(products_blueprint, relay=False):
        wait_until(lambda: DeadLetter.objects.count() == 1 and engine.count(index) >= 2, message="dead letter")
        wait_until(lambda: all(p.lag == 0 for p in consumer_lag(products_blueprint)), message="offsets committed")

    engine.refresh(index)
    assert sorted(h["_id"] for h in engine.scan(index)) == ["1", "3"]
    letter = DeadLetter.objects.get()
    assert (letter.reason, letter.source, letter.blueprint_id) == ("unknown_aggregate", "consumer", products_blueprint.pk)
    assert json.loads(bytes(letter.raw_value)) == stray and (letter.partition, letter.offset) == (0, 1)
    assert "BRAND_UPSERT" in letter.error and "PRODUCT" in letter.error
