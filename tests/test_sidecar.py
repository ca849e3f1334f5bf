"""Sidecar indices: price and stock in a small index refreshed every second, the rest in a main index
refreshed every 30 s; both written from the same events with the same external versions."""

import dataclasses

import pytest

from backfills import cutover as cutovers
from catalog import services as catalog
from catalog.blueprint import ensure_products_blueprint, products_definition
from catalog import stamps
from catalog.documents import product_events
from catalog.models import Product
from django.db.models import F
from indexing.blueprints import sidecar
from indexing.blueprints.documents import get_builder
from indexing.engines import BulkAction
from indexing.control import revisions
from indexing.blueprints.indices import ensure_live_index, index_names
from indexing.models import DeadLetter, PhysicalIndex
from indexing.reconciliation import reconcile
from indexing.pipeline.bulk_sink import BulkSink
from indexing.pipeline.writer import write_documents, write_targets
from tests.helpers import pipeline, wait_converged

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

FAST = ("price_minor", "available_qty")


def products_builder(event):
    return get_builder("products")(event)


@pytest.fixture
def sidecar_blueprint(isolated_pipeline, unique, engine):
    """A products blueprint created from the shipped files: its first revision declares the sidecar."""
    blueprint = ensure_products_blueprint(name=f"side-{unique}")
    ensure_live_index(blueprint, engine)
    yield blueprint
    for index in blueprint.indices.all():
        for name in index_names(index):
            engine.delete_index(name)


def seed(n):
    return catalog.create_products_bulk([dict(tenant_id="t", title=f"Lamp {i}", price_minor=100 + i, available_qty=i)
                                         for i in range(n)])


def write(blueprint, engine, events):
    return write_documents(blueprint, write_targets(blueprint), [(None, e) for e in events], BulkSink.from_settings(engine))


def test_the_index_pair_splits_fields_and_serves_its_own_refresh_intervals(sidecar_blueprint, engine):
    live = sidecar_blueprint.live_index()
    side = live.sidecar
    assert side["name"] == f"{live.name}_sidecar" and side["fields"] == list(FAST)
    assert not set(FAST) & set(live.mappings["properties"])
    assert set(side["mappings"]["properties"]) == {"id", "tenant_id", "version", "updated_at", "deleted", *FAST}
    assert live.settings["refresh_interval"] == "30s" and side["settings"]["refresh_interval"] == "1s"
    for name, interval in ((live.name, "30s"), (side["name"], "1s")):
        assert engine.client.indices.get_settings(index=name)[name]["settings"]["index"]["refresh_interval"] == interval
    assert set(engine.get_alias(sidecar_blueprint.sidecar_read_alias)) == {side["name"]}
    assert set(engine.get_alias(sidecar_blueprint.read_alias)) == {live.name}


def test_versions_stale_events_deletes_and_dead_letters_on_both_indices(sidecar_blueprint, engine):
    live = sidecar_blueprint.live_index()
    side = live.sidecar["name"]
    product = seed(1)[0]
    event = product_events([product.pk])[0]
    pid = str(product.pk)

    newer = dataclasses.replace(event, version=event.version + 10, payload={**event.payload, "price_minor": 999})
    result = write(sidecar_blueprint, engine, [newer])
    assert len(result.indexed) == 2 and not result.dead and not result.dropped_fields
    main_doc, side_doc = engine.get(live.name, pid), engine.get(side, pid)
    assert main_doc["_version"] == side_doc["_version"] == newer.version
    assert "price_minor" not in main_doc["_source"] and main_doc["_source"]["title"] == "Lamp 0"
    assert side_doc["_source"]["price_minor"] == 999 and "title" not in side_doc["_source"]

    # An older event (a replay, a late retry) loses on both: 409 twice, nothing overwritten.
    older = dataclasses.replace(event, version=event.version + 5, payload={**event.payload, "price_minor": 1})
    result = write(sidecar_blueprint, engine, [older])
    assert result.stale == 2 and not result.indexed
    assert engine.get(side, pid)["_source"]["price_minor"] == 999

    # A delete is a tombstone in both, at its version; a stale upsert after it loses on both.
    delete = dataclasses.replace(event, event_type="PRODUCT_DELETE", version=event.version + 20, payload={})
    assert len(write(sidecar_blueprint, engine, [delete]).indexed) == 2
    for name in (live.name, side):
        doc = engine.get(name, pid)
        assert doc["_version"] == delete.version and doc["_source"]["deleted"] is True
    assert write(sidecar_blueprint, engine, [newer]).stale == 2
    engine.refresh(sidecar_blueprint.sidecar_read_alias)
    assert engine.count(sidecar_blueprint.sidecar_read_alias) == 0  # the read alias hides tombstones

    # A value only the sidecar's mapping refuses is a dead letter naming the sidecar; the main half is written.
    bad = dataclasses.replace(event, entity_id="77", version=1, payload={**event.payload, "available_qty": "lots"})
    result = write(sidecar_blueprint, engine, [bad])
    assert len(result.indexed) == 1 and [letter.target_index for letter in result.dead] == [side]
    letter = DeadLetter.objects.get(entity_id="77")
    assert letter.reason == DeadLetter.Reason.MAPPING_REJECTED and letter.target_index == side


def test_hard_deletes_reach_both_indices(isolated_pipeline, unique, engine):
    blueprint = ensure_products_blueprint(name=f"hardside-{unique}", delete_mode="hard", hard_delete_gc_deletes="24h")
    live = ensure_live_index(blueprint, engine)
    try:
        product = seed(1)[0]
        event = product_events([product.pk])[0]
        write(blueprint, engine, [event])
        delete = dataclasses.replace(event, event_type="PRODUCT_DELETE", version=event.version + 1, payload={})
        assert len(write(blueprint, engine, [delete]).indexed) == 2
        assert engine.get(live.name, str(product.pk)) is None and engine.get(live.sidecar["name"], str(product.pk)) is None
        assert write(blueprint, engine, [event]).stale == 2  # the versioned deletes' tombstones refuse it
    finally:
        for name in index_names(live):
            engine.delete_index(name)


def test_pipeline_converges_both_indices_and_reconciliation_finds_sidecar_drift(sidecar_blueprint, engine):
    products = seed(60)
    live = sidecar_blueprint.live_index()
    side = live.sidecar["name"]
    deleted = {}
    with pipeline(sidecar_blueprint):
        for p in products[:20]:
            catalog.update_product(p.pk, price_minor=5000 + p.pk, available_qty=0)
        for p in products[50:53]:
            deleted[str(p.pk)] = catalog.delete_product(p.pk)
        wait_converged(engine, live.name, deleted)  # main and sidecar halves, same versions

        # Drift only the sidecar has: a change whose bulk item succeeded on the main index and was lost
        # on the sidecar (written here to the main index only, behind the pipeline's back).
        victims = [str(p.pk) for p in products[30:32]]
        for pid in victims:
            Product.objects.filter(pk=pid).update(price_minor=1, change_stamp=stamps.next_stamp(), version=F("version") + 1)
        for event in product_events([int(pid) for pid in victims]):
            document, _ = sidecar.split(products_builder(event), FAST)
            engine.bulk([BulkAction("index", live.name, event.entity_id, event.version, document)])
        report = reconcile(sidecar_blueprint, dry_run=True, index_name=side)
        assert (report.missing, report.stale, report.orphaned) == (0, 2, 0)
        assert sorted(report.sample_ids["stale"]) == sorted(victims)
        assert reconcile(sidecar_blueprint, dry_run=True).drift == 0  # the main index is fine

        repaired = reconcile(sidecar_blueprint, dry_run=False, index_name=side)
        assert repaired.repaired == 2
        wait_converged(engine, live.name, deleted)
    assert reconcile(sidecar_blueprint, dry_run=True, index_name=side).drift == 0


def test_sidecar_served_through_a_revision_and_a_cutover(products_blueprint, engine, eager_celery, django_user_model):
    from django.contrib.auth.models import Permission

    approve = Permission.objects.get(codename="approve_cutover")
    requester = django_user_model.objects.create_user("requester", password="x")
    approver = django_user_model.objects.create_user("approver", password="x")
    for user in (requester, approver):
        user.user_permissions.add(approve)
    products = seed(300)
    old = products_blueprint.live_index()
    assert not old.sidecar and not products_blueprint.sidecar  # revision 1: one index
    with pipeline(products_blueprint):
        wait_converged(engine, old.name)
        revision = revisions.propose(products_blueprint, products_definition(), by="requester",
                                     reason="price and stock in a sidecar refreshed every second")
        assert revision.definition["sidecar"]["fields"] == list(FAST) and revision.validation["sidecar"] == list(FAST)
        assert '"sidecar"' in "\n".join(revisions.diff(old.revision.definition, revision.definition))

        cutover = cutovers.request(products_blueprint, requester)
        cutovers.start_build(cutover, requester)
        cutover.refresh_from_db()
        assert cutover.state == cutover.State.AWAITING_APPROVAL, [g for g in cutover.guard_results if not g["passed"]]
        new = cutover.to_index
        assert {g["name"] for g in cutover.guard_results} >= {f"count parity: {new.sidecar['name']}",
                                                             f"reconciliation sample: {new.sidecar['name']}"}
        # The build ran without refreshes; each index got its serving interval back.
        new.refresh_from_db()
        assert new.settings["refresh_interval"] == "30s" and new.sidecar["settings"]["refresh_interval"] == "1s"
        cutovers.approve(cutover, approver)
        cutovers.execute(cutover, requester)

        assert set(engine.get_alias(products_blueprint.read_alias)) == {new.name}
        assert set(engine.get_alias(products_blueprint.sidecar_read_alias)) == {new.sidecar["name"]}
        products_blueprint.refresh_from_db()
        assert products_blueprint.sidecar["fields"] == list(FAST) and products_blueprint.revision == revision.number

        for p in products[:10]:
            catalog.update_product(p.pk, price_minor=1, available_qty=7)
        wait_converged(engine, new.name)
        wait_converged(engine, old.name)  # the previous index keeps receiving writes for a rollback

        # A rollback moves the sidecar aliases away with the main ones: the old revision has none.
        cutovers.rollback(cutover, approver)
        assert set(engine.get_alias(products_blueprint.read_alias)) == {old.name}
        assert engine.get_alias(products_blueprint.sidecar_read_alias) == {}
        products_blueprint.refresh_from_db()
        assert products_blueprint.sidecar == {}
    new.refresh_from_db()
    assert new.state == PhysicalIndex.State.RETIRED


def test_overview_shows_freshness_per_index_and_explains_it(sidecar_blueprint, engine, admin_client):
    from indexing.observability import freshness

    live = sidecar_blueprint.live_index()
    with pipeline(sidecar_blueprint):
        version, committed_at = freshness.send_canary(sidecar_blueprint)
        freshness.await_canary(sidecar_blueprint, version, committed_at, timeout_s=45)
    main_lag = freshness.recent(sidecar_blueprint.name, "canary", 60)
    side_lag = freshness.recent(sidecar_blueprint.name, "sidecar", 60)
    assert main_lag and side_lag
    assert side_lag.p50_ms < 5000  # the sidecar refreshes every second; the main index may take up to 30 s
    # Each index is held to its own refresh interval plus the budget (2 s by default).
    limits = freshness.thresholds(sidecar_blueprint)
    assert limits["sidecar"] == 1000 + 2000
    assert limits["canary"] == 30_000 + 2000

    html = admin_client.get("/partials/indices/", HTTP_HX_REQUEST="true").content.decode()
    assert f'data-freshness-index="{live.name}"' in html and f'data-freshness-index="{live.sidecar["name"]}"' in html
    assert "(refresh 30s)" in html and "price_minor, available_qty" in html
    assert "What is measured" in html and "wait=searchable" in html
