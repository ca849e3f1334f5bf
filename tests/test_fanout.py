"""Invariant 13: a change to a joined row (a brand rename, a category rename or move) fans out to
every dependent document through the outbox, throttled and resumable, and versions built from
the highest change stamp of every row a document depends on let no race leave one stale."""

from __future__ import annotations

import random
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from backfills import services as backfills
from backfills.models import Backfill, BackfillProgress
from backfills.runner import ChunkRunner
from catalog import brands, categories, services
from catalog.documents import build_product, product_events
from catalog.models import Product
from indexing import reconciliation
from indexing.core import stats
from indexing.engines import BulkAction
from indexing.models import OutboxEvent
from indexing.observability.lag import consumer_lag
from tests.helpers import consumer_process, db_thread, index_state, pipeline, wait_converged, wait_until
from tests.test_backfills import kill_worker_mid_chunk

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def manual_fanouts(monkeypatch):
    """Fan-out chunk workers are started by the test, not by Celery."""
    monkeypatch.setattr(backfills, "enqueue", lambda *args, **kwargs: None)


def bulk(n, **fields):
    made = []
    for start in range(0, n, 5000):
        made += services.create_products_bulk([dict(tenant_id="t1", title=f"Item {i}", price_minor=i,
                                                     available_qty=i % 50, **fields)
                                               for i in range(start, min(n, start + 5000))])
    return made


def load_index(engine, index: str) -> None:
    """Fill the index as a backfill would (same builder and versions) and drop the creation events:
    these tests are about what a change does, not about carrying the initial load through Kafka."""
    ids = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), 5000):
        events = product_events(ids[start:start + 5000])
        assert all(r.ok for r in engine.bulk(
            [BulkAction("index", index, e.entity_id, e.version, build_product(e)) for e in events], chunk_size=2000))
    OutboxEvent.objects.all().delete()
    engine.refresh(index)


def fanouts():
    return list(Backfill.objects.filter(purpose=Backfill.Purpose.FANOUT).order_by("created_at"))


def test_brand_rename_reaches_every_product_and_nothing_else(products_blueprint, engine, manual_fanouts):
    acme = brands.create_brand(tenant_id="t1", name="Acme")
    other = brands.create_brand(tenant_id="t1", name="Globex")
    bulk(20_000, brand_id=acme.pk)
    bulk(500, brand_id=other.pk)
    bulk(300, brand_name="Free text")
    index = products_blueprint.live_index().name
    load_index(engine, index)
    before = index_state(engine, index)

    brands.update_brand(acme.pk, name="Acme Renamed")
    [fanout] = fanouts()
    assert fanout.selection == {"kind": "dependency", "on": "catalog.Brand", "id": acme.pk}
    assert fanout.rows_total == 20_000 and fanout.status == Backfill.Status.RUNNING
    assert fanout.target_index.name == index
    # A change that no document shows (the country) starts nothing.
    brands.update_brand(acme.pk, country="DE")
    assert len(fanouts()) == 1

    started = time.monotonic()
    with pipeline(products_blueprint):
        runners = [db_thread(ChunkRunner(fanout.pk).run) for _ in range(2)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
        wait_converged(engine, index, timeout=240)
    print(f"\nrename of 20,000 products: searchable in {time.monotonic() - started:.1f} s")
    fanout.refresh_from_db()
    progress = backfills.progress(fanout)
    assert fanout.status == Backfill.Status.COMPLETED and progress.rows_done == 20_000 and progress.percent == 100

    after = index_state(engine, index)
    renamed = {k for k, (_, doc) in after.items() if doc.get("brand") == "Acme Renamed"}
    assert len(renamed) == 20_000
    # Nothing else changed: the other products' documents are the very same writes as before.
    untouched = set(after) - renamed
    assert len(untouched) == 800 and all(after[k] == before[k] for k in untouched)
    assert all({k: v for k, v in after[k][1].items() if k not in ("brand", "version", "updated_at")}
               == {k: v for k, v in before[k][1].items() if k not in ("brand", "version", "updated_at")}
               for k in renamed)


def test_category_move_gives_the_whole_subtree_its_new_path(products_blueprint, engine, manual_fanouts):
    home = categories.create_category(tenant_id="t1", name="Home")
    garden = categories.create_category(tenant_id="t1", name="Garden")
    furniture = categories.create_category(tenant_id="t1", name="Furniture", parent=home)
    chairs = categories.create_category(tenant_id="t1", name="Chairs", parent=furniture)
    office = categories.create_category(tenant_id="t1", name="Office", parent=chairs)
    for category, n in ((home, 50), (furniture, 100), (chairs, 100), (office, 100), (garden, 50)):
        bulk(n, category_id=category.pk)
    index = products_blueprint.live_index().name
    load_index(engine, index)

    with pytest.raises(categories.InvalidMove):
        categories.update_category(furniture.pk, parent=office)  # under its own descendant
    categories.update_category(furniture.pk, parent=garden)
    categories.update_category(home.pk, name="House")
    moved, renamed = fanouts()
    assert moved.rows_total == 300 and renamed.rows_total == 50
    with pipeline(products_blueprint):
        for fanout in (moved, renamed):
            ChunkRunner(fanout.pk).run()
        wait_converged(engine, index, timeout=120)
    paths = {tuple(doc["category_path"]) for _, doc in index_state(engine, index).values()}
    assert paths == {("House",), ("Garden",), ("Garden", "Furniture"), ("Garden", "Furniture", "Chairs"),
                     ("Garden", "Furniture", "Chairs", "Office")}
    hits = engine.client.search(index=index, body={"query": {"term": {"category_path": "Furniture"}}, "size": 0})
    assert hits["hits"]["total"]["value"] == 300


def test_renames_racing_product_updates_and_a_sigkilled_consumer_converge(products_blueprint, engine,
                                                                           isolated_pipeline, manual_fanouts):
    acme = brands.create_brand(tenant_id="t1", name="Acme")
    other = brands.create_brand(tenant_id="t1", name="Globex")
    root = categories.create_category(tenant_id="t1", name="Root")
    leaf = categories.create_category(tenant_id="t1", name="Leaf", parent=root)
    ids = [p.pk for p in bulk(3000, brand_id=acme.pk, category_id=leaf.pk)]
    index = products_blueprint.live_index().name
    load_index(engine, index)
    stop = threading.Event()
    errors = []

    def writer(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                pid = rng.choice(ids)
                changes = {"price_minor": rng.randint(1, 10_000), "title": f"Race {rng.randint(1, 999)}"}
                if rng.random() < 0.1:
                    changes["brand_id"] = rng.choice([acme.pk, other.pk])
                services.update_product(pid, **changes)
            except Exception as exc:  # surfaced below
                errors.append(exc)
                raise

    def batches():
        return stats.counters(products_blueprint.name).get("batches", 0)

    writers = [db_thread(writer, seed) for seed in range(3)]
    for thread in writers:
        thread.start()
    runners = []
    consumer = None
    try:
        with pipeline(products_blueprint, consumer=False):  # the relay here; the consumer is a process
            consumer = consumer_process(products_blueprint, isolated_pipeline)
            started = batches()
            wait_until(lambda: batches() > started, timeout=90, message="the consumer indexing")
            brands.update_brand(acme.pk, name="Acme Two")
            runners.append(db_thread(ChunkRunner(fanouts()[-1].pk).run))
            runners[-1].start()
            categories.update_category(root.pk, name="Root Two")
            runners.append(db_thread(ChunkRunner(fanouts()[-1].pk).run))
            runners[-1].start()
            # SIGKILL mid-stream, fan-outs and product writes in flight: whatever it indexed and did
            # not commit is replayed by the next consumer and meets the versions there.
            during = batches()
            wait_until(lambda: batches() > during + 3, timeout=90, message="batches of the renames")
            consumer.send_signal(signal.SIGKILL)
            consumer.wait()
            # The second rename commits while nothing consumes.
            brands.update_brand(acme.pk, name="Acme Three")
            runners.append(db_thread(ChunkRunner(fanouts()[-1].pk).run))
            runners[-1].start()
            consumer = consumer_process(products_blueprint, isolated_pipeline)
            # The writes race the new consumer until it has indexed a few batches of them.
            restarted = batches()
            wait_until(lambda: batches() > restarted + 2, timeout=90, message="the new consumer's batches")
            stop.set()
            for thread in writers + runners:
                thread.join()
            assert not errors
            wait_converged(engine, index, timeout=240)
    finally:
        stop.set()
        if consumer is not None and consumer.poll() is None:
            consumer.send_signal(signal.SIGTERM)
            consumer.wait(60)
    names = {doc["brand"] for _, doc in index_state(engine, index).values()}
    assert names <= {"Acme Three", "Globex"} and "Acme Three" in names


def test_killed_fanout_resumes_and_a_cancelled_one_is_repaired_by_reconciliation(products_blueprint, engine,
                                                                                 manual_fanouts):
    acme = brands.create_brand(tenant_id="t1", name="Acme")
    bulk(10_000, brand_id=acme.pk)
    index = products_blueprint.live_index().name
    load_index(engine, index)

    brands.update_brand(acme.pk, name="Acme Killed")
    [fanout] = fanouts()
    Backfill.objects.filter(pk=fanout.pk).update(chunk_size=10_000, page_size=200, rows_per_second=2000)
    BackfillProgress.objects.filter(backfill=fanout).delete()
    from backfills import planner

    fanout.refresh_from_db()
    planner.plan(fanout)
    chunk, killed_at = kill_worker_mid_chunk(fanout, after_rows=2000)
    assert killed_at.status == "RUNNING" and 0 < killed_at.rows_done < 10_000
    BackfillProgress.objects.filter(pk=chunk.pk).update(updated_at=timezone.now() - timedelta(seconds=61))
    assert ChunkRunner(fanout.pk).run() == 1
    chunk.refresh_from_db()
    assert chunk.status == "COMPLETED" and chunk.attempts == 2 and 10_000 <= chunk.rows_done <= 10_200
    with pipeline(products_blueprint):
        wait_converged(engine, index, timeout=180)

        # A second rename whose fan-out is cancelled part way: reconciliation finds the rest stale.
        brands.update_brand(acme.pk, name="Acme Cancelled")
        fanout = fanouts()[-1]
        backfills.set_rate(fanout, 1000)
        runner = db_thread(ChunkRunner(fanout.pk).run)
        runner.start()
        wait_until(lambda: backfills.progress(fanout).rows_done >= 1000, timeout=60, interval=0.05,
                   message="part of the fan-out")
        backfills.cancel(fanout)
        runner.join()
        done = backfills.progress(fanout).rows_done
        assert 1000 <= done < 10_000
        # What was emitted is indexed: published, and read by the consumer up to the end of its topic.
        wait_until(lambda: not OutboxEvent.objects.filter(published_at__isnull=True).exists()
                   and sum(p.lag for p in consumer_lag(products_blueprint)) == 0, timeout=120,
                   message="the cancelled fan-out's events indexed")
        report = reconciliation.reconcile(products_blueprint, dry_run=True)
        assert report.status == "completed", report.error
        assert report.stale >= 10_000 - done - 1000 and report.missing == report.orphaned == 0
        repaired = reconciliation.reconcile(products_blueprint)
        assert repaired.repaired == repaired.stale > 0
        wait_converged(engine, index, timeout=180)
    assert reconciliation.reconcile(products_blueprint, dry_run=True).stale == 0


def test_a_fanout_shows_on_the_console_and_can_be_paused_and_cancelled(products_blueprint, manual_fanouts, client,
                                                                        django_user_model):
    from django.contrib.auth.models import Permission

    acme = brands.create_brand(tenant_id="t1", name="Acme")
    bulk(50, brand_id=acme.pk)
    brands.update_brand(acme.pk, name="Acme Console")
    [fanout] = fanouts()
    operator = django_user_model.objects.create_user("console-operator", password="x")
    operator.user_permissions.add(Permission.objects.get(codename="operate_pipeline"))
    client.force_login(operator)
    listing = client.get("/backfills/").content.decode()
    assert str(fanout.pk) in listing and "Re-emit documents after a joined row changed" in listing
    detail = client.get(f"/backfills/{fanout.pk}/").content.decode()
    assert "selection dependency" in detail and "5000 rows/s" in detail
    client.post(f"/backfills/{fanout.pk}/pause/")
    fanout.refresh_from_db()
    assert fanout.status == Backfill.Status.PAUSED
    client.post(f"/backfills/{fanout.pk}/cancel/", {"confirmed": "1"})
    fanout.refresh_from_db()
    assert fanout.status == Backfill.Status.CANCELLED
