"""Invariant 16 on a real three-node cluster: a search node leaving (SIGKILL, a rolling restart,
a node away during a backfill) is a transient fault. Writes go on; the pipeline retries "not
ready" answers and waits out nodes that do not answer; at the end the index equals the database
(ids, versions, deletes) and nothing was dead-lettered.

These drills need the cluster of ``devstack/up opensearch-cluster`` (HTTP 9220-9222) as SEARCH_URL
and run only when selected: ``make test-cluster`` (``pytest -m cluster tests/test_cluster.py``).
They print what they did (writes, retries, not-ready answers, drift) for ``-s``.
"""

from __future__ import annotations

import os
import time

import pytest
import requests

from backfills import services as backfills
from backfills.models import Backfill
from backfills.runner import ChunkRunner
from catalog import services as catalog
from indexing.observability import alerts
from indexing.models import Alert, DeadLetter
from indexing.observability.overview import cluster_status
from tests.drills import WRITES_PER_S, Started, SteadyWrites, report
from tests.helpers import assert_index_matches_db, db_thread, devstack, pipeline, wait_converged, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True, databases=["default", "replica"])]

NODES = (1, 2, 3)
# How long a killed node stays away: a minute spans the cluster's fault detection, the replica's
# promotion and many retried batches. SEARCHSYNC_DRILL_NODE_AWAY_S shortens it for a quick local run.
NODE_AWAY_S = float(os.environ.get("SEARCHSYNC_DRILL_NODE_AWAY_S", "60"))


# -- the cluster ----------------------------------------------------------------------------------

def node_url(n: int) -> str:
    return f"http://127.0.0.1:{9219 + n}"


def answering_url() -> str:
    for n in NODES:
        try:
            requests.get(node_url(n), timeout=2).raise_for_status()
            return node_url(n)
        except requests.RequestException:
            continue
    raise AssertionError("no cluster node answers")


def cluster_node(action: str, n: int) -> None:
    devstack("node", "opensearch-cluster", action, str(n))


def wait_green(timeout: float = 180.0) -> None:
    def green():
        try:
            body = requests.get(f"{answering_url()}/_cluster/health",
                                params={"wait_for_status": "green", "wait_for_nodes": "3", "timeout": "5s"},
                                timeout=10).json()
        except (requests.RequestException, AssertionError):
            return False
        return body.get("status") == "green" and body.get("number_of_nodes") == 3

    wait_until(green, timeout=timeout, interval=1.0, message="cluster green with 3 nodes")


def primary_node(index: str) -> int:
    rows = requests.get(f"{answering_url()}/_cat/shards/{index}", params={"format": "json", "h": "prirep,state,node"},
                        timeout=10).json()
    (primary,) = [r for r in rows if r["prirep"] == "p" and r["state"] == "STARTED"]
    return int(primary["node"].rsplit("-", 1)[1])


@pytest.fixture(scope="module", autouse=True)
def cluster_up():
    """The drills need all three nodes of the cluster SEARCH_URL names, and leave them all up."""
    from django.conf import settings

    assert len([h for h in settings.SEARCH_URL.split(",") if h.strip()]) == 3, \
        "SEARCH_URL must name the three cluster nodes (make test-cluster sets it)"
    devstack("up", "opensearch-cluster")
    wait_green()
    yield
    for n in NODES:  # a drill that failed half-way must not leave a node away for the next one
        cluster_node("start", n)


@pytest.fixture
def cluster_pipeline(isolated_pipeline):
    """Every index the test creates gets one replica, as a cluster's indices should."""
    isolated_pipeline.SEARCHSYNC = {**isolated_pipeline.SEARCHSYNC, "INDEX_REPLICAS": 1}
    return isolated_pipeline


@pytest.fixture
def blueprint(cluster_pipeline, unique, engine):
    from catalog.blueprint import ensure_products_blueprint
    from indexing.blueprints.indices import ensure_live_index

    bp = ensure_products_blueprint(name=f"products-{unique}")
    live = ensure_live_index(bp, engine)
    assert engine.get_settings(live.name)["number_of_replicas"] == "1"
    wait_green()
    yield bp
    for index in bp.indices.all():
        engine.delete_index(index.name)


# -- drills ---------------------------------------------------------------------------------------

def test_data_node_killed_under_load_and_back_later_loses_nothing(blueprint, engine):
    started = Started()
    live = blueprint.live_index().name
    with pipeline(blueprint):
        with SteadyWrites(seed=16) as writes:
            time.sleep(8)
            victim = primary_node(live)  # the node holding the primary: its replica must take over
            cluster_node("kill", victim)
            killed_at = time.monotonic()
            time.sleep(NODE_AWAY_S)
            away = time.monotonic() - killed_at
            status_while_away = cluster_status()
            cluster_node("start", victim)
            time.sleep(5)
        # writes have stopped; the relay and the consumer run on until the index has caught up
        wait_converged(engine, live, writes.deleted, timeout=180)
    figures = report("node-loss", writes, blueprint, engine, live, started, killed_node=victim,
                     node_away_s=round(away, 1), health_while_away=status_while_away.health.status)
    assert figures["drift"] == 0
    assert figures["dead_letters"] == 0, list(DeadLetter.objects.values_list("reason", "error")[:5])
    assert status_while_away.health.nodes == 2
    assert figures["writes"] > NODE_AWAY_S * WRITES_PER_S * 0.8  # writes went on while the node was away
    wait_green()


def test_rolling_restart_of_all_three_nodes_while_writes_go_on(blueprint, engine):
    started = Started()
    live = blueprint.live_index().name
    restarts = []
    with pipeline(blueprint):
        with SteadyWrites(seed=17) as writes:
            time.sleep(3)
            for n in NODES:
                t0 = time.monotonic()
                cluster_node("stop", n)  # graceful, as a rolling upgrade does
                time.sleep(3)
                cluster_node("start", n)
                wait_green()  # replicas back in sync before the next node goes
                restarts.append(round(time.monotonic() - t0, 1))
        wait_converged(engine, live, writes.deleted, timeout=180)
    figures = report("rolling-restart", writes, blueprint, engine, live, started, restart_seconds=restarts)
    assert figures["drift"] == 0
    assert figures["dead_letters"] == 0, list(DeadLetter.objects.values_list("reason", "error")[:5])


def test_backfill_while_a_node_is_away_pauses_then_finishes_with_the_right_count(blueprint, engine):
    """A new index is built without replicas, so the node holding its primary going away turns the
    cluster red: the backfill's writes get "not ready" answers and wait; the red cluster raises an
    alert and shows on the overview; when the node is back the backfill finishes with every row."""
    from indexing.blueprints.indices import create_physical_index

    started = Started()
    rows = [dict(tenant_id=f"t{i % 3}", title=f"Backfilled {i}", price_minor=i, available_qty=i % 50)
            for i in range(6000)]
    catalog.create_products_bulk(rows)
    index = create_physical_index(blueprint, extra_settings=backfills.BUILD_SETTINGS)
    wait_green()
    backfill = backfills.schedule(blueprint, target_index=index, purpose=Backfill.Purpose.REBUILD, chunk_size=1000,
                                  page_size=200, rows_per_second=1500, start=False)
    from backfills import planner

    planner.plan(backfill)
    Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.RUNNING)
    victim = primary_node(index.name)

    runner = ChunkRunner(backfill.pk)
    worker = db_thread(runner.run)
    worker.start()
    wait_until(lambda: backfills.progress(backfill).rows_done >= 1000, timeout=60, message="backfill under way")
    cluster_node("kill", victim)
    killed_at = time.monotonic()
    wait_until(lambda: requests.get(f"{answering_url()}/_cluster/health", timeout=10).json()["status"] == "red",
               timeout=60, message="cluster red")
    assert alerts.evaluate_cluster() is True
    red_alert = Alert.objects.get(condition=Alert.Condition.CLUSTER_RED, state=Alert.State.OPEN)
    assert cluster_status().colour == "red"
    done_before = backfills.progress(backfill).rows_done
    time.sleep(max(5.0, NODE_AWAY_S / 2))
    done_while_away = backfills.progress(backfill).rows_done
    backfill.refresh_from_db()
    assert backfill.status == Backfill.Status.RUNNING  # paused by the missing shard, not failed
    assert done_while_away < len(rows)
    cluster_node("start", victim)
    away = time.monotonic() - killed_at
    worker.join(300)
    assert not worker.is_alive()
    backfill.refresh_from_db()
    assert backfill.status == Backfill.Status.COMPLETED
    engine.refresh(index.name)
    assert engine.count(index.name) == len(rows)
    assert_index_matches_db(engine, index.name)
    wait_green()
    assert alerts.evaluate_cluster() is False
    red_alert.refresh_from_db()
    assert red_alert.state == Alert.State.RESOLVED
    report("backfill-node-away", None, blueprint, engine, index.name, started, killed_node=victim,
           node_away_s=round(away, 1), rows=len(rows), rows_before_kill=done_before,
           rows_while_away=done_while_away - done_before, backfill_retried=runner.sink.totals["retried"],
           backfill_not_ready=runner.sink.totals["not_ready"],
           backfill_unavailable_waits=runner.sink.totals["unavailable_waits"])
    assert DeadLetter.objects.filter(blueprint=blueprint).count() == 0
    assert runner.sink.totals["not_ready"] > 0  # the missing primary was answered item by item, and retried
