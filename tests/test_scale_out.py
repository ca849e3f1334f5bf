"""Scale-out drill: three consumer processes share a blueprint's partitions; one is SIGKILLed mid-run and
another added. Nothing is lost: the index equals the database and the group's lag drains to zero."""

import random
import signal
import threading
import time

import pytest

from catalog import services
from indexing.core import stats
from indexing.observability.lag import consumer_lag
from indexing.outbox.relay import OutboxRelay
from indexing.core.topics import ensure_topic
from tests.helpers import consumer_process, db_thread, random_operations, wait_converged, wait_until

pytestmark = pytest.mark.slow

PARTITIONS = 6


def owners(blueprint) -> dict[str, list[int]]:
    return {cid: s.get("partitions") or [] for cid, s in stats.consumer_states(blueprint.name).items()}


def test_three_consumers_share_partitions_survive_a_kill_and_an_addition(products_blueprint, engine,
                                                                         isolated_pipeline):
    isolated_pipeline.SEARCHSYNC = {**isolated_pipeline.SEARCHSYNC, "TOPIC_PARTITIONS": PARTITIONS}
    ensure_topic(products_blueprint.topic)
    rng = random.Random(31)
    deleted: dict[str, int] = {}
    index = products_blueprint.live_index().name
    services.create_products_bulk([dict(tenant_id="t", title=f"P {i}", price_minor=i, available_qty=i)
                                   for i in range(15_000)])
    random_operations(rng, 800, deleted, start_products=0)
    OutboxRelay().drain()

    procs = [consumer_process(products_blueprint, isolated_pipeline, SEARCHSYNC_TOPIC_PARTITIONS=str(PARTITIONS)) for _ in range(3)]
    added, stop = None, threading.Event()

    def keep_writing():
        # Changes go on through the kill and the addition, so the kill lands mid-stream however fast
        # the group drained the backlog while it was forming.
        while not stop.is_set():
            random_operations(rng, 40, deleted, start_products=0)
            OutboxRelay().drain()
            time.sleep(0.05)

    writer = db_thread(keep_writing)
    try:
        # All three have joined and split the partitions between them.
        wait_until(lambda: sum(1 for p in owners(products_blueprint).values() if p) == 3, timeout=120, interval=0.2,
                   message="three consumers owning partitions")
        assert sorted(p for ps in owners(products_blueprint).values() for p in ps) == list(range(PARTITIONS))
        writer.start()
        batches = stats.counters(products_blueprint.name).get("batches", 0)
        wait_until(lambda: stats.counters(products_blueprint.name).get("batches", 0) > batches + 3, timeout=120,
                   interval=0.05, message="the consumers indexing")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        added = consumer_process(products_blueprint, isolated_pipeline, SEARCHSYNC_TOPIC_PARTITIONS=str(PARTITIONS))
        # Changes go on while the group rebalances, then stop so the index can converge.
        after_kill = stats.counters(products_blueprint.name).get("batches", 0)
        wait_until(lambda: stats.counters(products_blueprint.name).get("batches", 0) > after_kill + 3, timeout=120,
                   interval=0.05, message="indexing going on after the kill and the addition")
        stop.set()
        writer.join(60)
        wait_converged(engine, index, deleted, timeout=240)
        wait_until(lambda: sum(p.lag for p in consumer_lag(products_blueprint, timeout=5)) == 0, timeout=120,
                   message="the group's lag drained")
    finally:
        stop.set()
        if writer.is_alive():
            writer.join(60)
        for p in procs[1:] + ([added] if added else []):
            p.send_signal(signal.SIGTERM)
        for p in procs[1:] + ([added] if added else []):
            p.wait(60)
    assert all(p.returncode == 0 for p in procs[1:] + [added])  # SIGTERM is a graceful stop
