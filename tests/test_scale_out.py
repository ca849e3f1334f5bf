"""Scale-out drill: three consumer processes share a blueprint's partitions; one is SIGKILLed mid-run and
another added. Nothing is lost: the index equals the database and the group's lag drains to zero."""

import random
import signal
import subprocess
import sys

import pytest
from django.db import connection

from catalog import services
from indexing import stats
from indexing.lag import consumer_lag
from indexing.relay import OutboxRelay
from indexing.topics import ensure_topic
from tests.helpers import ROOT, random_operations, wait_converged, wait_until

pytestmark = pytest.mark.slow

PARTITIONS = 6


def consumer_process(blueprint, settings):
    db = connection.settings_dict
    env = {
        **__import__("os").environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SEARCHSYNC_TOPIC_PREFIX": settings.SEARCHSYNC["TOPIC_PREFIX"],
        "SEARCHSYNC_CONSUMER_GROUP_PREFIX": settings.SEARCHSYNC["CONSUMER_GROUP_PREFIX"],
        "SEARCHSYNC_TOPIC_PARTITIONS": str(PARTITIONS),
        "SEARCHSYNC_BATCH_SIZE": "200",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "manage.py", "run_pipeline", "--no-relay", "--blueprint", blueprint.name],
                            cwd=ROOT, env=env)


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

    procs = [consumer_process(products_blueprint, isolated_pipeline) for _ in range(3)]
    added = None
    try:
        # All three have joined and split the partitions between them.
        wait_until(lambda: sum(1 for p in owners(products_blueprint).values() if p) == 3, timeout=120, interval=0.2,
                   message="three consumers owning partitions")
        assert sorted(p for ps in owners(products_blueprint).values() for p in ps) == list(range(PARTITIONS))
        batches = stats.counters(products_blueprint.name).get("batches", 0)
        wait_until(lambda: stats.counters(products_blueprint.name).get("batches", 0) > batches + 3, timeout=120,
                   interval=0.05, message="the consumers indexing")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        added = consumer_process(products_blueprint, isolated_pipeline)
        # More changes while the group rebalances.
        random_operations(rng, 400, deleted, start_products=0)
        OutboxRelay().drain()
        wait_converged(engine, index, deleted, timeout=240)
        wait_until(lambda: sum(p.lag for p in consumer_lag(products_blueprint, timeout=5)) == 0, timeout=120,
                   message="the group's lag drained")
    finally:
        for p in procs[1:] + ([added] if added else []):
            p.send_signal(signal.SIGTERM)
        for p in procs[1:] + ([added] if added else []):
            p.wait(60)
    assert all(p.returncode == 0 for p in procs[1:] + [added])  # SIGTERM is a graceful stop
