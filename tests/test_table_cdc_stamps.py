"""A blueprint fed by the products table's own change events (Debezium table CDC, real Kafka
Connect), versioned by the rows' change stamps: filled by a backfill racing the stream, repaired by
reconciliation, rebuilt through a cutover — and always equal to the table, versions included."""

import random
import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connections

from backfills import cutover as cutovers
from backfills import planner
from backfills import services as backfills
from backfills.models import Backfill, Cutover
from backfills.runner import ChunkRunner
from catalog import services as catalog
from catalog.blueprint import ensure_products_blueprint
from catalog.management.commands.seed_catalog import random_product
from catalog.models import Product
from indexing.control import connectors
from indexing import reconciliation
from indexing.core import stats
from indexing.blueprints.indices import ensure_live_index
from indexing.models import PhysicalIndex
from indexing.core.topics import ensure_topic
from tests.helpers import index_state, pipeline, wait_until

# Kafka Connect is shared by the test workers, and one drill stops it: its users run in one worker.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, databases=["default", "replica"]),
              pytest.mark.xdist_group("connect")]


@pytest.fixture
def people(django_user_model):
    approve = Permission.objects.get(codename="approve_cutover")
    requester = django_user_model.objects.create_user("requester", password="x")
    approver = django_user_model.objects.create_user("approver", password="x")
    requester.user_permissions.add(approve)
    approver.user_permissions.add(approve)
    return requester, approver


def table_state() -> dict[str, tuple[int, dict]]:
    """Each product row as its document must be: the row's own columns, at the row's change stamp."""
    rows = Product.objects.values("id", "tenant_id", "title", "description", "brand_name", "price_minor",
                                  "available_qty", "change_stamp")
    return {str(r["id"]): (r["change_stamp"], {"tenant_id": r["tenant_id"], "title": r["title"],
                                              "description": r["description"], "brand": r["brand_name"],
                                              "price_minor": r["price_minor"], "available_qty": r["available_qty"],
                                              "version": r["change_stamp"], "deleted": False})
            for r in rows}


def differences(engine, index: str, tombstones: dict[str, int]) -> list:
    """What separates the index from the table: [] when every row is there at its stamp with its
    columns, and every deleted row is a tombstone at its last stamp + 1."""
    state = index_state(engine, index)
    live = {k: v for k, v in state.items() if not v[1].get("deleted")}
    got_tombstones = {k: v[0] for k, v in state.items() if v[1].get("deleted")}
    db = table_state()
    problems = [("missing", k) for k in db.keys() - live.keys()] + [("live but deleted", k) for k in live.keys() - db.keys()]
    for pid, (stamp, fields) in db.items():
        if pid in live:
            version, source = live[pid]
            got = {k: source.get(k) for k in fields}
            if version != stamp or got != fields:
                problems.append(("differs", pid, stamp, version, fields, got))
    if got_tombstones != tombstones:
        problems.append(("tombstones", {k: (got_tombstones.get(k), tombstones.get(k))
                                        for k in got_tombstones.keys() | tombstones.keys()
                                        if got_tombstones.get(k) != tombstones.get(k)}))
    return problems


def wait_equal(engine, index, tombstones, timeout=180):
    last = []

    def equal():
        last[:] = differences(engine, index, tombstones)
        return not last

    wait_until(equal, timeout=timeout, interval=0.5, message=f"{index} equal to the table")
    return True


def write_concurrently(rng, ids: list[int], tombstones: dict[str, int], count: int) -> None:
    """Service writes, bulk QuerySet updates (stamped by the trigger), deletes and creates."""
    for _ in range(count):
        roll = rng.random()
        if roll < 0.15:
            ids.append(catalog.create_product(**random_product(rng)).pk)
        elif roll < 0.7:
            catalog.update_product(rng.choice(ids), price_minor=rng.randint(1, 99_999), title=f"Raced {rng.random():.6f}")
        elif roll < 0.85:
            # A writer that does not stamp: the database stamps each row anyway, or its change event
            # would carry the old version and be refused as stale.
            Product.objects.filter(pk__in=rng.sample(ids, 5)).update(available_qty=rng.randint(0, 50))
        else:
            pid = ids.pop(rng.randrange(len(ids)))
            last_stamp = Product.objects.get(pk=pid).change_stamp
            catalog.delete_product(pid)
            tombstones[str(pid)] = last_stamp + 1


def in_thread(target, *args):
    def run():
        try:
            target(*args)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_stamp_versioned_table_cdc_is_backfilled_reconciled_and_cut_over(
        transactional_db, isolated_pipeline, engine, debezium_connector, unique, eager_celery, people):
    requester, approver = people
    rng = random.Random(53)
    tombstones: dict[str, int] = {}
    # Rows written before the connector: it streams changes only (no snapshot), so they reach the
    # index through the backfill alone.
    ids = [p.pk for p in catalog.create_products_bulk([random_product(rng) for _ in range(3000)])]
    prefix = f"tstamp{unique}"
    blueprint = ensure_products_blueprint(name=f"tstamp-{unique}", event_format="debezium_table",
                                          source_topic=connectors.table_topic(prefix))
    index = ensure_live_index(blueprint, engine)
    try:
        ensure_topic(blueprint.topic)
        connector = debezium_connector("table", connectors.table_connector_config(f"ss_tstamp_{unique}", prefix,
                                                                                  snapshot="no_data"))
        with pipeline(blueprint, relay=False):
            # 1. A backfill of the live index while the stream carries concurrent writes.
            backfill = backfills.schedule(blueprint, chunk_size=500, page_size=100, start=False)
            planner.plan(backfill)
            Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.RUNNING)
            threads = [in_thread(write_concurrently, rng, ids, tombstones, 600)]
            threads += [in_thread(lambda: ChunkRunner(backfill.pk).run()) for _ in range(2)]
            for thread in threads:
                thread.join(600)
            backfill.refresh_from_db()
            assert backfill.status == Backfill.Status.COMPLETED
            assert wait_equal(engine, index.name, tombstones)

            # 2. Drift, found and repaired by reconciliation: rows created, updated and deleted while
            # Connect is paused (their events come late).
            connectors.pause(connector)
            wait_until(lambda: all(t["state"] == "PAUSED" for t in connectors.status(connector)["tasks"]),
                       message="connector paused")
            live = sorted(int(k) for k in table_state())
            ids.extend(catalog.create_product(**random_product(rng)).pk for _ in range(7))
            for pk in live[100:106]:
                catalog.update_product(pk, title="Changed while the stream is paused")
            for pk in live[200:202]:
                last_stamp = Product.objects.get(pk=pk).change_stamp
                catalog.delete_product(pk)
                ids.remove(pk)
                tombstones[str(pk)] = last_stamp + 1
            report = reconciliation.reconcile(blueprint, dry_run=False)
            assert report.status == "completed", report.error
            assert (report.missing, report.stale, report.orphaned) == (7, 6, 2)
            # Repaired at once, at the versions the stream would have brought: the rows' stamps, and
            # for a deleted row one above its document, which is its last stamp + 1.
            assert not differences(engine, index.name, tombstones)
            stale_before = stats.counters(blueprint.name).get("stale", 0)
            connectors.resume(connector)
            wait_until(lambda: stats.counters(blueprint.name).get("stale", 0) - stale_before >= 8,
                       message="the late change events refused as duplicates")
            assert not differences(engine, index.name, tombstones)
            assert reconciliation.reconcile(blueprint, dry_run=True).drift == 0

            # 3. A cutover: the new index is built by a backfill, guarded, approved and swapped.
            cutover = cutovers.request(blueprint, requester)
            cutovers.start_build(cutover, requester)
            cutover.refresh_from_db()
            assert cutover.state == Cutover.State.AWAITING_APPROVAL, cutover.guard_results
            new = cutover.to_index
            # Rebuilt from rows, every live document equals the streamed one, byte for byte.
            streamed = {k: v for k, v in index_state(engine, index.name).items() if not v[1].get("deleted")}
            rebuilt = {k: v for k, v in index_state(engine, new.name).items() if not v[1].get("deleted")}
            assert rebuilt == streamed
            cutovers.approve(cutover, approver)
            cutovers.execute(cutover, requester)
            assert set(engine.get_alias(blueprint.read_alias)) == {new.name}
            new.refresh_from_db()
            assert new.state == PhysicalIndex.State.LIVE

            # 4. The stream goes on into the new index (and the old one, during the rollback window).
            rebuilt_tombstones = {}
            before = set(tombstones)
            write_concurrently(rng, ids, tombstones, 300)
            rebuilt_tombstones = {k: v for k, v in tombstones.items() if k not in before}
            assert wait_equal(engine, new.name, rebuilt_tombstones)
            assert wait_equal(engine, index.name, tombstones)
    finally:
        for physical in blueprint.indices.all():
            engine.delete_index(physical.name)
