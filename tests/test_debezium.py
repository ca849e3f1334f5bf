"""Change data capture from the WAL with Debezium (Kafka Connect), beside the relay: the outbox
event router and direct table CDC give the same index as the relay path, survive replays, and a
stopped Connect shows as a lagging slot and resumes from its offsets without loss."""

import random

import pytest
from confluent_kafka import Consumer, TopicPartition

from catalog.blueprint import ensure_products_blueprint
from catalog.models import Product
from indexing.control import connectors
from indexing.core import stats
from indexing.blueprints.indices import CANARY_ENTITY_ID, ensure_live_index
from indexing.pipeline.consumer import consumer_config
from indexing.core.topics import ensure_topic
from tests.helpers import devstack, pipeline, random_operations, wait_converged, wait_until

# Kafka Connect is shared by the test workers, and one drill stops it: its users run in one worker.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, databases=["default", "replica"]),
              pytest.mark.xdist_group("connect")]


def rewind(blueprint):
    client = Consumer(consumer_config(blueprint.consumer_group))
    partitions = client.list_topics(blueprint.topic, timeout=10).topics[blueprint.topic].partitions
    client.commit(offsets=[TopicPartition(blueprint.topic, p, 0) for p in partitions], asynchronous=False)
    client.close()


def test_outbox_router_feeds_the_unchanged_pipeline(products_blueprint, engine, debezium_connector, unique, isolated_pipeline):
    ensure_topic(products_blueprint.topic)
    debezium_connector("outbox", connectors.outbox_connector_config(f"ss_outbox_{unique}",
                                                           isolated_pipeline.SEARCHSYNC["TOPIC_PREFIX"]))
    rng = random.Random(31)
    deleted: dict[str, int] = {}
    index = products_blueprint.live_index().name
    with pipeline(products_blueprint, relay=False):  # Debezium publishes: no relay runs
        random_operations(rng, 800, deleted, start_products=150)
        wait_converged(engine, index, deleted, timeout=180)
    before = {h["_id"]: (h["_version"], h["_source"]) for h in engine.scan(index)}
    stale_before = stats.counters(products_blueprint.name).get("stale", 0)
    rewind(products_blueprint)
    with pipeline(products_blueprint, relay=False):
        wait_until(lambda: stats.counters(products_blueprint.name).get("stale", 0) - stale_before > 100,
                   message="replayed events rejected as stale")
        wait_converged(engine, index, deleted)
    assert {h["_id"]: (h["_version"], h["_source"]) for h in engine.scan(index)} == before


def test_table_cdc_blueprint_converges_from_the_snapshot_with_stamp_versions(transactional_db, isolated_pipeline, engine,
                                                                          debezium_connector, unique):
    rng = random.Random(37)
    deleted: dict[str, int] = {}
    # Rows that exist before the connector: the initial snapshot (op=r) brings them in. Rows
    # deleted before it never reach the index at all, so they leave no tombstone.
    random_operations(rng, 100, {}, start_products=100)
    prefix = f"tcdc{unique}"
    blueprint = ensure_products_blueprint(name=f"tcdc-{unique}", event_format="debezium_table",
                                          source_topic=connectors.table_topic(prefix))
    index = ensure_live_index(blueprint, engine).name
    try:
        ensure_topic(blueprint.topic)
        debezium_connector("table", connectors.table_connector_config(f"ss_table_{unique}", prefix))
        with pipeline(blueprint, relay=False):
            random_operations(rng, 600, deleted, start_products=0)
            wait_converged(engine, index, deleted, timeout=180, versions=False)
            # Versions are the rows' change stamps, from the snapshot's op=r events as from the stream.
            stamps = dict(Product.objects.values_list("pk", "change_stamp"))
            docs = [h for h in engine.scan(index) if not h["_source"].get("deleted") and h["_id"] != CANARY_ENTITY_ID]
            assert docs and all(h["_version"] == stamps[int(h["_id"])] for h in docs)
        rewind(blueprint)
        with pipeline(blueprint, relay=False):
            wait_until(lambda: stats.counters(blueprint.name).get("stale", 0) > 100, message="replays rejected")
            wait_converged(engine, index, deleted, versions=False)
    finally:
        engine.delete_index(index)


def test_stopped_connect_shows_slot_lag_and_resumes_from_offsets(products_blueprint, engine, debezium_connector, unique,
                                                                isolated_pipeline, admin_client):
    ensure_topic(products_blueprint.topic)
    slot = f"ss_restart_{unique}"
    config = connectors.outbox_connector_config(slot, isolated_pipeline.SEARCHSYNC["TOPIC_PREFIX"])
    name = debezium_connector("outbox", config)
    index = products_blueprint.live_index().name
    rng = random.Random(41)
    deleted: dict[str, int] = {}
    with pipeline(products_blueprint, relay=False):
        random_operations(rng, 200, deleted, start_products=50)
        wait_converged(engine, index, deleted)
        devstack("down", "connect")
        try:
            lag_before = next(s for s in connectors.replication_slots() if s.name == slot).unconfirmed_bytes
            random_operations(rng, 400, deleted, start_products=50)  # written while Connect is down
            health = next(s for s in connectors.replication_slots() if s.name == slot)
            assert not health.active and health.unconfirmed_bytes > lag_before
            console = admin_client.get("/partials/indices/").content.decode()
            row = console[console.index(f'data-slot="{slot}"'):]
            assert "none attached" in row[:600]
        finally:
            devstack("up", "connect")
        # Standalone Connect keeps offsets in its file, not REST-created configs: the application
        # applies its connector again and Debezium resumes from the stored offset and the slot.
        connectors.apply(name, config)
        wait_until(lambda: connectors.running(name), timeout=120)
        wait_converged(engine, index, deleted, timeout=180)
    assert next(s for s in connectors.replication_slots() if s.name == slot).active
