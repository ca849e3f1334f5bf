"""Failure drills against the real services: the search node stopped while the application
writes, and the indexing consumer SIGKILLed mid-batch. Afterwards the index must equal the
database and nothing may be lost."""

import random
import signal
import time

import pytest

from catalog import services
from indexing.control import connectors
from indexing.core import stats
from indexing.outbox.relay import OutboxRelay
from indexing.core.topics import ensure_topic
from tests.helpers import (consumer_process, pipeline, random_operations, start_search_node, stop_search_node, wait_converged,
                           wait_until)

pytestmark = pytest.mark.slow


# Drills on Kafka Connect run in one test worker: one of them stops it (xdist_group).
@pytest.fixture(params=["relay", pytest.param("debezium", marks=pytest.mark.xdist_group("connect"))])
def publisher(request, products_blueprint, isolated_pipeline, unique):
    """Who moves outbox rows to Kafka in this drill: the built-in relay, or Debezium's outbox router."""
    if request.param == "debezium":
        ensure_topic(products_blueprint.topic)
        connect = request.getfixturevalue("debezium_connector")
        connect("outbox", connectors.outbox_connector_config(f"ss_drill_{unique}",
                                                             isolated_pipeline.SEARCHSYNC["TOPIC_PREFIX"]))
    return request.param


def published_count(topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    from indexing.pipeline.consumer import consumer_config

    client = Consumer(consumer_config("published-count"))
    try:
        partitions = client.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(client.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        client.close()


def publish_all(publisher, blueprint) -> None:
    """Every outbox row is in Kafka: drained by the relay, or streamed by Debezium."""
    from indexing.models import OutboxEvent

    if publisher == "relay":
        OutboxRelay().drain()
    else:
        total = OutboxEvent.objects.count()
        wait_until(lambda: published_count(blueprint.topic) >= total, timeout=180, message="Debezium published all")


def test_search_node_outage_does_not_slow_writes_and_loses_nothing(products_blueprint, engine, publisher):
    rng = random.Random(3)
    deleted: dict[str, int] = {}
    index = products_blueprint.live_index().name
    with pipeline(products_blueprint, relay=publisher == "relay"):
        random_operations(rng, 200, deleted, start_products=100)
        wait_converged(engine, index, deleted)
        before = _timed_writes(rng, 200, deleted)

        stop_search_node()  # the node under test (SEARCH_URL), whichever engine it is
        try:
            outage_started = time.monotonic()
            during = []
            while time.monotonic() - outage_started < 20:
                during.extend(_timed_writes(rng, 50, deleted))
        finally:
            start_search_node()
        wait_converged(engine, index, deleted, timeout=180)
    print(f"\nwrite latency p50 before outage {_p50(before):.1f} ms, during outage {_p50(during):.1f} ms "
          f"({len(during)} writes while the node was down)")
    assert len(during) > 100
    # Bounded generously, since these machines are shared and noisy: a write path that waited on the
    # search cluster would take its request timeout (seconds), far beyond this bound.
    assert _p50(during) < 5 * _p50(before) + 50, (_p50(before), _p50(during))


def _timed_writes(rng, n, deleted):
    latencies = []
    from catalog.models import Product

    ids = list(Product.objects.values_list("pk", flat=True)[:500])
    for _ in range(n):
        started = time.perf_counter()
        if rng.random() < 0.5 or not ids:
            services.create_product(tenant_id="t", title="Outage Chair", price_minor=rng.randint(1, 9999), available_qty=1)
        elif rng.random() < 0.9:
            services.update_product(rng.choice(ids), price_minor=rng.randint(1, 9999))
        else:
            pid = ids.pop(rng.randrange(len(ids)))
            deleted[str(pid)] = services.delete_product(pid)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _p50(values):
    return sorted(values)[len(values) // 2] if values else float("nan")


def test_consumer_killed_mid_batch_loses_nothing(products_blueprint, engine, isolated_pipeline, publisher):
    rng = random.Random(5)
    deleted: dict[str, int] = {}
    index = products_blueprint.live_index().name
    services.create_products_bulk([dict(tenant_id="t", title=f"Bulk {i}", price_minor=i, available_qty=i) for i in range(20_000)])
    random_operations(rng, 1500, deleted, start_products=0)
    publish_all(publisher, products_blueprint)

    kills = 0
    # Kill until a restart had to replay work the killed process had indexed but not committed
    # (the replayed events come back as stale): proof the kill landed between bulk and commit.
    while kills < 10:
        batches = stats.counters(products_blueprint.name).get("batches", 0)
        proc = consumer_process(products_blueprint, isolated_pipeline)
        # Once it is indexing (it has joined the group and finished a batch), kill it at a random moment.
        wait_until(lambda: stats.counters(products_blueprint.name).get("batches", 0) > batches, timeout=90,
                   interval=0.02, message="the consumer indexing")
        time.sleep(rng.random() * 0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if stats.counters(products_blueprint.name).get("stale", 0) > 0:
            break
    proc = consumer_process(products_blueprint, isolated_pipeline)
    try:
        wait_converged(engine, index, deleted, timeout=240)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    counters = stats.counters(products_blueprint.name)
    print(f"\n{kills} SIGKILLs; outcomes {counters}")
    assert counters.get("stale", 0) > 0, "no kill landed between the bulk write and the commit"
    assert proc.returncode == 0  # SIGTERM is a graceful stop
