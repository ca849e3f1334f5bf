"""Invariant 7: backpressure, not crashes. A second search node with a one-slot write queue
answers 429 while a noisy neighbour floods it; the consumer shrinks its batches, pauses, and
converges by itself with nothing dead-lettered."""

import threading
import time

import pytest

from catalog import services
from catalog.blueprint import ensure_products_blueprint
from indexing.blueprints.indices import ensure_live_index
from indexing.pipeline.consumer import IndexingConsumer
from indexing.engines import BulkAction, build_engine
from indexing.models import DeadLetter
from indexing.outbox.relay import OutboxRelay
from tests.helpers import devstack, running, wait_converged
from tests.helpers import small_queue_node as small_queue_node_spec

# One small-queue node per engine, started once for the module: its tests run in one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("small-queue-node")]


@pytest.fixture(scope="module")
def small_queue_node():
    """A second node of the engine under test (OpenSearch 2.x, 3.x or Elasticsearch) with a one-slot write queue."""
    from django.conf import settings

    service, env, url = small_queue_node_spec()
    devstack("up", service, env=env)
    try:
        yield build_engine(settings.SEARCH_ENGINE, url)
    finally:
        devstack("down", service, env=env, check=False)


def noisy_neighbour(engine, index, stop):
    doc = {"id": "n", "tenant_id": "noise", "title": "noise " * 20, "price_minor": 1, "available_qty": 1, "version": 1}
    version = 1
    while not stop.is_set():
        version += 1
        engine.bulk([BulkAction("index", index, str(i), version, doc) for i in range(1000)], chunk_size=1000)


def test_consumer_backs_off_under_429_and_converges(small_queue_node, transactional_db, isolated_pipeline, unique):
    engine = small_queue_node
    # One index per document: a sidecar doubles the shard requests of every bulk, and this node's
    # one-slot write queue would then refuse some of ours even after the neighbour stopped.
    blueprint = ensure_products_blueprint(name=f"bp-{unique}", sidecar={})
    index = ensure_live_index(blueprint, engine).name
    noise_index = f"noise-{unique}"
    engine.create_index(noise_index, blueprint.settings, blueprint.mappings)
    assert engine.write_thread_pool().queue_capacity == 1
    rejected_before = engine.write_thread_pool().rejected

    services.create_products_bulk([dict(tenant_id="t", title=f"P {i}", price_minor=i, available_qty=i) for i in range(8000)])
    OutboxRelay().drain()

    consumer = IndexingConsumer(blueprint, engine, batch_size=500)
    seen_states, seen_batches = set(), set()
    stop_noise = threading.Event()
    noise = [threading.Thread(target=noisy_neighbour, args=(engine, noise_index, stop_noise), daemon=True) for _ in range(6)]
    try:
        for t in noise:
            t.start()
        with running(consumer.run, "consumer"):
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not {"throttled", "paused"} & seen_states:
                seen_states.add(consumer.backpressure.state)
                seen_batches.add(consumer.backpressure.batch_size)
                time.sleep(0.01)
            # Keep the pressure on until the consumer has shrunk its batches (asserted below), not for a fixed time.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and min(seen_batches) >= 500:
                seen_batches.add(consumer.backpressure.batch_size)
                time.sleep(0.01)
            stop_noise.set()
            for t in noise:
                t.join(30)
            # The batch size grows back one batch at a time: give it batches to grow on, whatever was
            # left of the backlog when the pressure cleared (a fast consumer may have drained it).
            services.create_products_bulk([dict(tenant_id="t", title=f"Q {i}", price_minor=i, available_qty=i)
                                           for i in range(6000)])
            OutboxRelay().drain()
            wait_converged(engine, index, timeout=180)
            recovered = consumer.backpressure.batch_size
            rejected = engine.write_thread_pool().rejected - rejected_before
    finally:
        stop_noise.set()
        engine.delete_index(noise_index)
        engine.delete_index(index)
    from indexing.core import stats

    counters = stats.counters(blueprint.name)
    print(f"\nnode rejected {rejected} writes; consumer states {seen_states}, batch sizes {sorted(seen_batches)}, "
          f"after recovery {recovered}, {counters}")
    assert rejected > 0, "the node was never saturated: the drill proved nothing"
    assert {"throttled", "paused"} & seen_states, "the consumer never reacted to the cluster's pressure"
    assert min(seen_batches) < 500
    assert recovered == 500, "the batch size did not recover once the pressure cleared"
    assert not DeadLetter.objects.exists(), "429s are backpressure, never a reason to dead-letter"


def test_sink_retries_429_items_without_dead_lettering(small_queue_node, unique):
    """The sink's side of it: items answered 429 are retried with backoff until accepted."""
    from indexing.pipeline.bulk_sink import BulkSink

    engine = small_queue_node
    from catalog.blueprint import products_definition

    definition = products_definition()
    index, noise_index = f"sink-{unique}", f"sink-noise-{unique}"
    engine.create_index(index, definition["settings"], definition["mappings"])
    engine.create_index(noise_index, definition["settings"], definition["mappings"])
    throttled = []
    sink = BulkSink(engine, max_retries=3, base_s=0.05, cap_s=1.0, chunk_size=250, on_throttled=throttled.append)
    stop_noise = threading.Event()
    noise = [threading.Thread(target=noisy_neighbour, args=(engine, noise_index, stop_noise), daemon=True) for _ in range(6)]
    doc = {"id": "x", "tenant_id": "t", "title": "sink", "price_minor": 1, "available_qty": 1, "version": 1}
    try:
        for t in noise:
            t.start()
        version, results = 0, []
        while not throttled and version < 200:
            version += 1
            results.append(sink.write([BulkAction("index", index, str(i), version, doc) for i in range(1000)]))
    finally:
        stop_noise.set()
        for t in noise:
            t.join(30)
        engine.refresh(index)
        count = engine.count(index)
        engine.delete_index(index)
        engine.delete_index(noise_index)
    assert throttled, "no 429 in 200 rounds: the node was never saturated"
    assert all(not r.failed for r in results)
    assert sum(r.rejected_429 for r in results) > 0
    assert len(results[-1].indexed) == 1000 and count == 1000


def test_a_full_write_queue_answers_429_items_that_are_transient(small_queue_node, unique):
    """Every engine answers a full write queue with item status 429 (the type name differs:
    Elasticsearch's es_rejected_execution_exception, OpenSearch's rejected_execution_exception);
    the pipeline goes by the status, so both are transient, never dead letters."""
    from catalog.blueprint import products_definition
    from indexing.pipeline.outcomes import Outcome, classify

    engine = small_queue_node
    definition = products_definition()
    index = f"reject-{unique}"
    engine.create_index(index, definition["settings"], definition["mappings"])
    doc = {"id": "x", "tenant_id": "t", "title": "reject " * 20, "price_minor": 1, "available_qty": 1, "version": 1}
    rejected, stop = [], threading.Event()

    def flood(offset):
        version = 0
        while not stop.is_set():
            version += 1
            for r in engine.bulk([BulkAction("index", index, str(offset + i), version, doc) for i in range(500)],
                                 chunk_size=500):
                if r.status == 429:
                    rejected.append(r)
                    stop.set()

    threads = [threading.Thread(target=flood, args=(n * 1000,), daemon=True) for n in range(8)]
    try:
        for t in threads:
            t.start()
        stop.wait(60)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        engine.delete_index(index)
    assert rejected, "the one-slot queue never answered 429"
    types = {r.error_type for r in rejected}
    print(f"\n429 error types: {types}")
    assert types <= {"es_rejected_execution_exception", "rejected_execution_exception"}
    assert all(classify(r) is Outcome.TRANSIENT for r in rejected)
