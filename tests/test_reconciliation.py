"""Reconciliation: drift injected behind the pipeline's back is found with exact counts per class,
repaired through the outbox → Kafka → consumer path, and a second run finds nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from catalog import services
from catalog.models import Product
from indexing import reconciliation
from indexing.reconciliation.locks import run_lock
from indexing.engines import BulkAction
from indexing.models import OutboxEvent, Reconciliation
from tests.helpers import pipeline, wait_converged, wait_until

# The reconciliation reads the replica alias, which tests mirror onto the test database.
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

DRIFT = ("missing", "stale", "orphaned", "expired_tombstones")


# --- helpers ------------------------------------------------------------------------



def counts(report: Reconciliation) -> dict[str, int]:
    return {c: getattr(report, c) for c in DRIFT}


def product_document(product: Product, version: int, **changes) -> dict:
    """A products document as the builder makes it, at any version (for writing drift directly)."""
    doc = {"id": str(product.pk), "tenant_id": product.tenant_id, "title": product.title,
           "description": product.description, "brand": product.brand_name, "price_minor": product.price_minor,
           "available_qty": product.available_qty, "version": version, "updated_at": product.updated_at.isoformat(),
           "deleted": False}
    doc.update(changes)
    return doc


def foreign_document(doc_id: str, version: int, *, deleted: bool, age: timedelta = timedelta(0)) -> dict:
    """A document whose id has no row: a live one is an orphan, an old tombstone an expired one."""
    updated = (datetime.now(dt_timezone.utc) - age).isoformat()
    doc = {"id": doc_id, "tenant_id": "t1", "version": version, "updated_at": updated, "deleted": deleted}
    if not deleted:
        doc.update(title=f"Ghost {doc_id}", price_minor=1, available_qty=0)
    return doc


def lose_outbox_events(product_ids) -> int:
    """Drop unpublished events as if they never made it to the relay."""
    deleted, _ = OutboxEvent.objects.filter(aggregate_id__in=[str(p) for p in product_ids],
                                            published_at__isnull=True).delete()
    return deleted


def write_behind_tombstones(engine, index: str, actions: list[BulkAction]) -> None:
    """Write ``actions`` over documents just deleted with plain deletes.

    A plain delete leaves a version tombstone (old version + 1) for index.gc_deletes
    (60 s); meanwhile any write at or below that version is refused — a re-emit at
    the row's version too. A real hourly run never sees that window, so the test
    shortens it and waits for the refresh that prunes the tombstones (pruning is
    paced by the node's cached clock, hence the retries).
    """
    engine.put_settings(index, {"gc_deletes": "0s"})
    # Tombstones are pruned one by one, not together: an action that got through is never sent
    # again, or its own write would answer 409 and the wait could never end.
    pending = list(actions)

    def written():
        nonlocal pending
        engine.refresh(index)
        pending = [r.action for r in engine.bulk(pending) if not r.ok]
        return not pending

    wait_until(written, timeout=90, interval=0.3, message="plain-delete tombstones to be pruned")
    engine.put_settings(index, {"gc_deletes": "60s"})


def create_products(n: int, prefix: str) -> list[int]:
    return [services.create_product(tenant_id="t1", title=f"{prefix} {i}", description="oak", brand_name="Acme",
                                    price_minor=1000 + i, available_qty=i % 9).pk for i in range(n)]


# --- the whole loop -----------------------------------------------------------------


def test_drift_of_every_class_is_counted_exactly_repaired_through_the_pipeline_and_gone_on_a_second_run(
        products_blueprint, engine):
    bp = products_blueprint
    index = bp.live_index().name
    deleted: dict[str, int] = {}
    with pipeline(bp):
        ids = create_products(40, "Chair")
        for pid in ids[:10]:
            services.update_product(pid, price_minor=5, title="Chair, reduced")
        for pid in ids[10:15]:  # at version 3: above the probe tombstones written below
            services.update_product(pid, available_qty=1)
            services.update_product(pid, available_qty=2)
        for pid in ids[-4:]:
            deleted[str(pid)] = services.delete_product(pid)  # recent tombstones: kept
        wait_converged(engine, index, deleted)
    live = ids[:-4]

    # Missing (a): documents deleted from the index by hand; stale (a): documents rewritten
    # one version back with an old title. Both start with plain deletes, pruned together.
    vanished, rewritten = live[10:15], live[:2]
    for pid in vanished + rewritten:
        engine.client.delete(index=index, id=str(pid))
    older = [Product.objects.get(pk=pid) for pid in rewritten]
    gone = [Product.objects.get(pk=pid) for pid in vanished]
    # Probes at version 1 prove the vanished documents' tombstones were pruned too; deleting them
    # again at version 2 (below the rows' version 3) leaves them missing and repairable at once.
    write_behind_tombstones(engine, index, [
        BulkAction("index", index, str(p.pk), p.version - 1, product_document(p, p.version - 1, title="Chair"))
        for p in older
    ] + [BulkAction("index", index, str(p.pk), 1, product_document(p, 1)) for p in gone])
    assert all(p.version == 3 for p in gone)
    assert all(r.ok for r in engine.bulk([BulkAction("delete", index, str(p.pk), 2) for p in gone]))
    # Missing (b): products whose creation event never reached the relay.
    never_sent = create_products(3, "Lamp")
    assert lose_outbox_events(never_sent) == 3
    # Stale (b): updates whose events were lost.
    lost_updates = live[20:22]
    for pid in lost_updates:
        services.update_product(pid, available_qty=77)
    assert lose_outbox_events(lost_updates) == 2
    # Orphans: live documents without a row.
    orphans = {"900000000001": 7, "900000000002": 3, "900000000003": 1}
    # Expired tombstones: deletes older than the blueprint's retention.
    expired = {"900000000101": 4, "900000000102": 9}
    age = timedelta(hours=bp.tombstone_retention_hours + 1)
    results = engine.bulk(
        [BulkAction("index", index, i, v, foreign_document(i, v, deleted=False)) for i, v in orphans.items()]
        + [BulkAction("index", index, i, v, foreign_document(i, v, deleted=True, age=age)) for i, v in expired.items()]
    )
    assert all(r.ok for r in results), results
    outbox_before = OutboxEvent.objects.count()

    report = reconciliation.reconcile(bp, dry_run=False, chunk_size=7)  # small chunks: many keyset pages

    assert report.status == "completed", report.error
    assert counts(report) == {"missing": 8, "stale": 4, "orphaned": 3, "expired_tombstones": 2}
    assert set(report.sample_ids["missing"]) == {str(p) for p in vanished + never_sent}
    assert set(report.sample_ids["stale"]) == {str(p) for p in rewritten + lost_updates}
    assert set(report.sample_ids["orphaned"]) == set(orphans)
    assert set(report.sample_ids["expired_tombstones"]) == set(expired)
    assert report.checked_db == Product.objects.count() == 39
    # 31 live documents of the 36 products, 4 recent tombstones, the 3 orphans and 2 expired tombstones.
    assert report.checked_index == 31 + 4 + 3 + 2
    assert report.repaired == 8 + 4 + 3 and report.purged == 2
    # Repairs are events in the outbox, not writes to the index: upserts at the rows' versions,
    # deletes one above the orphans' versions.
    repairs = {(e.aggregate_id, e.event_type, e.version) for e in OutboxEvent.objects.filter(published_at__isnull=True)}
    assert len(repairs) == OutboxEvent.objects.count() - outbox_before == 15
    from catalog.documents import document_versions

    # The documents' versions: the highest change stamp of each product and the rows it joins.
    versions = {int(pk): v for pk, v in document_versions(Product.objects.values_list("pk", flat=True)).items()}
    assert repairs == (
        {(str(p), "PRODUCT_UPSERT", versions[p]) for p in vanished + never_sent + rewritten + lost_updates}
        | {(i, "PRODUCT_DELETE", v + 1) for i, v in orphans.items()}
    )
    engine.refresh(index)
    assert engine.mget(index, list(expired)) == {}  # purged: the one direct write

    with pipeline(bp):
        wait_converged(engine, index, {**deleted, **{i: v + 1 for i, v in orphans.items()}})

    second = reconciliation.reconcile(bp, dry_run=False)
    assert second.status == "completed", second.error
    assert counts(second) == dict.fromkeys(DRIFT, 0) and second.drift == 0
    assert second.repaired == 0 and second.purged == 0
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 0


def test_a_dry_run_classifies_and_changes_nothing(products_blueprint, engine):
    bp = products_blueprint
    index = bp.live_index().name
    with pipeline(bp):
        ids = create_products(12, "Desk")
        wait_converged(engine, index)
    lost = create_products(2, "Shelf")
    lose_outbox_events(lost)
    services.update_product(ids[0], title="Desk, renamed")
    lose_outbox_events(ids[:1])
    # The orphan's id is not even a valid key of the table (a document from an old id scheme).
    engine.bulk([BulkAction("index", index, "legacy-sku-9", 2, foreign_document("legacy-sku-9", 2, deleted=False)),
                 BulkAction("index", index, "800000000002", 5,
                            foreign_document("800000000002", 5, deleted=True, age=timedelta(days=30)))])
    outbox_before = list(OutboxEvent.objects.values_list("event_id", flat=True))
    engine.refresh(index)
    docs_before = engine.count(index)

    report = reconciliation.reconcile(bp, dry_run=True)

    assert report.status == "completed", report.error
    assert counts(report) == {"missing": 2, "stale": 1, "orphaned": 1, "expired_tombstones": 1}
    assert report.sample_ids["stale"] == [str(ids[0])] and report.sample_ids["orphaned"] == ["legacy-sku-9"]
    assert report.repaired == 0 and report.purged == 0 and report.dry_run
    assert list(OutboxEvent.objects.values_list("event_id", flat=True)) == outbox_before
    engine.refresh(index)
    assert engine.count(index) == docs_before
    assert engine.get(index, "800000000002")["_version"] == 5


# --- API, schedule and console ------------------------------------------------------



def test_api_validates_starts_a_run_and_reports_it(products_blueprint, engine, operator_api, eager_celery):
    bp = products_blueprint
    bad = operator_api.post("/api/v1/reconciliations/", {"blueprint": "nope", "dry_run": "maybe", "rows_per_second": 0},
                   format="json")
    assert bad.status_code == 400
    assert set(bad.json()) == {"blueprint", "dry_run", "rows_per_second"}
    bad_index = operator_api.post("/api/v1/reconciliations/", {"blueprint": bp.name, "index": "other_v1"}, format="json")
    assert bad_index.status_code == 400 and set(bad_index.json()) == {"index"}
    assert not Reconciliation.objects.exists()

    lose_outbox_events(create_products(3, "Stool"))
    started = operator_api.post("/api/v1/reconciliations/", {"blueprint": bp.name, "dry_run": True, "rows_per_second": 1000},
                       format="json")
    assert started.status_code == 202, started.content
    report_id = started.json()["id"]
    detail = operator_api.get(f"/api/v1/reconciliations/{report_id}/").json()
    assert detail["status"] == "completed" and detail["requested_by"] == "api-operator"
    assert detail["missing"] == 3 and detail["drift"] == 3 and detail["checked_db"] == 3
    assert detail["index_name"] == bp.live_index().name and detail["rows_per_second"] == 1000
    listed = operator_api.get("/api/v1/reconciliations/", {"blueprint": bp.name}).json()
    assert [r["id"] for r in listed["results"]] == [report_id]
    assert operator_api.get("/api/v1/reconciliations/", {"status": "sleeping"}).status_code == 400

    throttled = operator_api.post(f"/api/v1/reconciliations/{report_id}/throttle/", {"rows_per_second": 50}, format="json")
    assert throttled.status_code == 200 and throttled.json()["rows_per_second"] == 50
    assert operator_api.post(f"/api/v1/reconciliations/{report_id}/throttle/", {"rows_per_second": -1},
                    format="json").status_code == 400

    # One run per index at a time.
    lock = run_lock(bp.live_index().name)
    assert lock.acquire(blocking=False)
    try:
        busy = operator_api.post("/api/v1/reconciliations/", {"blueprint": bp.name}, format="json")
        assert busy.status_code == 409
    finally:
        lock.release()

    schema = operator_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/reconciliations/" in schema["paths"] and "post" in schema["paths"]["/api/v1/reconciliations/"]


def test_hourly_round_repairs_every_enabled_blueprint(products_blueprint, eager_celery):
    from indexing.tasks import reconcile_all

    lose_outbox_events(create_products(2, "Bench"))
    assert reconcile_all() == 1
    report = Reconciliation.objects.get(blueprint=products_blueprint)
    assert report.status == "completed" and not report.dry_run and report.requested_by is None
    assert report.missing == 2 and report.repaired == 2
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 2  # the re-emitted upserts


def test_console_starts_a_dry_run_confirms_a_repair_and_polls_running_reports(products_blueprint, admin_client,
                                                                              eager_celery):
    bp = products_blueprint
    lose_outbox_events(create_products(2, "Crate"))
    page = admin_client.get("/reconciliations/")
    assert page.status_code == 200 and bp.name.encode() in page.content

    # A repairing run needs a confirm step; nothing starts before it.
    confirm = admin_client.post("/reconciliations/start/", {"blueprint": bp.name, "mode": "repair"})
    assert confirm.status_code == 200 and b"Yes, repair" in confirm.content
    assert not Reconciliation.objects.exists()
    done = admin_client.post("/reconciliations/start/", {"blueprint": bp.name, "mode": "repair", "confirmed": "on"})
    report = Reconciliation.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/reconciliations/{report.pk}/"
    assert report.status == "completed" and not report.dry_run and report.missing == 2 and report.repaired == 2

    detail = admin_client.get(done["Location"])
    assert b'data-drift="missing">2<' in detail.content and b'class="status red"' in detail.content
    assert b"every 2s" not in detail.content  # finished: no more polling

    bad = admin_client.post("/reconciliations/start/", {"blueprint": bp.name, "mode": "repair", "rows_per_second": 0})
    assert bad.status_code == 400

    running = Reconciliation.objects.create(blueprint=bp, index_name=report.index_name, dry_run=True,
                                            status=Reconciliation.Status.RUNNING)
    partial = admin_client.get(f"/reconciliations/{running.pk}/", HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in partial.content and b"<html" not in partial.content
    row = admin_client.get(f"/reconciliations/{running.pk}/row/")
    assert b'hx-trigger="every 2s"' in row.content and b'data-status="running"' in row.content
    assert admin_client.get("/admin/indexing/reconciliation/").status_code == 200
    assert admin_client.get(f"/admin/indexing/reconciliation/{report.pk}/change/").status_code == 200


# --- scale and throttle -------------------------------------------------------------


def test_twenty_thousand_documents_within_a_rows_per_second_limit(products_blueprint, engine):
    """20,000 rows vs 20,000 documents: a throttled dry run, an unthrottled repair, a clean run after."""
    from catalog.documents import build_product
    from indexing.blueprints.sources import get_source

    bp = products_blueprint
    index = bp.live_index().name
    n = 20_000
    for start in range(0, n, 5_000):
        services.create_products_bulk([dict(tenant_id=f"t{i % 5}", title=f"Item {i}", description="pine",
                                            brand_name="Acme", price_minor=i, available_qty=i % 50)
                                       for i in range(start, start + 5_000)])
    # Load the index as a backfill would (same builder, rows' versions): this test is about the
    # reconciliation at scale, not about pushing 20,000 events through Kafka.
    OutboxEvent.objects.all().delete()
    source = get_source(bp.source_model)
    products = list(Product.objects.order_by("pk"))
    events = [e for start in range(0, len(products), 2_000) for e in source.events(products[start:start + 2_000])]
    actions = [BulkAction("index", index, e.entity_id, e.version, build_product(e)) for e in events]
    assert all(r.ok for r in engine.bulk(actions, chunk_size=2_000))
    lose_outbox_events(create_products(10, "Late"))
    orphans = {f"70000000000{i}": 2 for i in range(5)}
    engine.bulk(BulkAction("index", index, i, v, foreign_document(i, v, deleted=False)) for i, v in orphans.items())

    rate = 5_000
    throttled = reconciliation.reconcile(bp, dry_run=True, rows_per_second=rate)
    assert throttled.status == "completed", throttled.error
    assert counts(throttled) == {"missing": 10, "stale": 0, "orphaned": 5, "expired_tombstones": 0}
    assert throttled.checked_db == n + 10 and throttled.checked_index == n + 5
    # Both passes are paced by the one limit: rows read plus documents read.
    floor = (throttled.checked_db + throttled.checked_index) / rate * 0.8
    print(f"\nthrottled dry run over {n} rows at {rate} rows/s: {throttled.duration_s:.1f} s (floor {floor:.1f} s)")
    assert throttled.duration_s >= floor

    repair = reconciliation.reconcile(bp, dry_run=False)
    print(f"unthrottled repair run: {repair.duration_s:.1f} s")
    assert repair.status == "completed" and repair.repaired == 15
    with pipeline(bp):
        wait_converged(engine, index, {i: v + 1 for i, v in orphans.items()}, timeout=180)
    clean = reconciliation.reconcile(bp, dry_run=True)
    print(f"clean run: {clean.duration_s:.1f} s")
    assert clean.drift == 0 and clean.checked_db == n + 10



@pytest.mark.browser
def test_operator_watches_a_report_poll_itself_until_finished(products_blueprint, live_server, django_user_model,
                                                             browser_page):
    from indexing.reconciliation import Reconciler, create_report
    from tests.helpers import running
    from tests.conftest import SHOTS
    from tests.helpers import login

    django_user_model.objects.create_user("operator", password="operator")
    lose_outbox_events(create_products(300, "Cabinet"))
    report = create_report(products_blueprint, dry_run=True, rows_per_second=150)  # 2 s of reading
    page = browser_page
    login(page, live_server)
    page.click("text=Reconciliation")
    row = page.locator(f"#reconciliation-{report.pk}")
    assert row.get_attribute("data-status") == "queued"
    page.goto(f"{live_server.url}/reconciliations/{report.pk}/")
    assert page.locator("#reconciliation-report").get_attribute("data-status") == "queued"
    # The run starts after the page is open: only the page's own polling can show its end.
    with running(lambda stop: Reconciler(report).run(), "reconciler"):
        page.wait_for_selector('#reconciliation-report[data-status="completed"]', timeout=30_000)
    assert page.locator('[data-drift="missing"]').first.inner_text() == "300"
    page.screenshot(path=str(SHOTS / "reconciliation_report.png"), full_page=True)
    page.click("text=← Reconciliation")
    page.wait_for_selector(f'#reconciliation-{report.pk}[data-status="completed"]')
    page.screenshot(path=str(SHOTS / "reconciliations.png"), full_page=True)
    assert not page.console_errors, page.console_errors
