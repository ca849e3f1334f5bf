"""Invariants 3 and 4: whatever the delivery order, the index converges to the database."""

import random

from confluent_kafka import Consumer, TopicPartition

from indexing.models import OutboxEvent
from tests.helpers import pipeline, random_operations, wait_converged, wait_until


def test_random_operations_converge(products_blueprint, engine):
    rng = random.Random(7)
    deleted: dict[str, int] = {}
    with pipeline(products_blueprint):
        random_operations(rng, 2500, deleted, start_products=300)
        wait_converged(engine, products_blueprint.live_index().name, deleted, timeout=180)
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


def test_rewinding_the_group_and_replaying_changes_nothing(products_blueprint, engine, settings):
    from indexing.pipeline.consumer import consumer_config

    rng = random.Random(11)
    deleted: dict[str, int] = {}
    index = products_blueprint.live_index().name
    with pipeline(products_blueprint):
        random_operations(rng, 600, deleted, start_products=100)
        wait_converged(engine, index, deleted)
    before = {h["_id"]: (h["_version"], h["_source"]) for h in engine.scan(index)}

    # Rewind every partition of the group to offset 0: all events arrive again, old ones after new ones.
    topic = products_blueprint.topic
    rewinder = Consumer(consumer_config(products_blueprint.consumer_group))
    partitions = rewinder.list_topics(topic, timeout=10).topics[topic].partitions
    rewinder.commit(offsets=[TopicPartition(topic, p, 0) for p in partitions], asynchronous=False)
    rewinder.close()

    from indexing.core import stats

    stale_before = stats.counters(products_blueprint.name).get("stale", 0)
    with pipeline(products_blueprint, relay=False):
        wait_until(lambda: stats.counters(products_blueprint.name).get("stale", 0) - stale_before > 100,
                   message="replayed events rejected as stale")
        wait_converged(engine, index, deleted)
    after = {h["_id"]: (h["_version"], h["_source"]) for h in engine.scan(index)}
    assert after == before
