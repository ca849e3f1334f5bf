"""A second entity (brands) registered through the public API alone: its own blueprint, index,
topic and consumer group; it converges under random writes and is backfilled on its own."""

import random

import pytest
from django.db import models
from django.core.management import call_command

from backfills import services as backfills
from backfills.models import Backfill
from catalog import brands
from catalog.models import Brand
from indexing.blueprints.indices import ensure_live_index
from indexing.reconciliation import reconcile
from indexing.control.registry import ensure_blueprint
from tests.helpers import index_state, pipeline, wait_until
from tests.test_metrics import scrape, value

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def brands_blueprint(transactional_db, isolated_pipeline, unique, engine):
    blueprint = ensure_blueprint("brands", name=f"brands-{unique}")
    ensure_live_index(blueprint, engine)
    yield blueprint
    for index in blueprint.indices.all():
        engine.delete_index(index.name)


def brand_diff(engine, index, deleted):
    """What differs between the brands table and the index (empty when converged)."""
    docs = index_state(engine, index)
    live = {k: v for k, v in docs.items() if not v[1]["deleted"]}
    tombstones = {k: v[0] for k, v in docs.items() if v[1]["deleted"]}
    db = {str(b.pk): (b.version, {"name": b.name, "country": b.country}) for b in Brand.objects.all()}
    got = {k: (v, {"name": s["name"], "country": s["country"]}) for k, (v, s) in live.items()}
    return {k: (db.get(k), got.get(k)) for k in set(db) | set(got) if db.get(k) != got.get(k)} or (
        tombstones != deleted and {"tombstones": (tombstones, deleted)})


def test_brands_have_their_own_blueprint_topic_and_group(brands_blueprint, products_blueprint):
    assert brands_blueprint.registered_as == "brands" and brands_blueprint.source_model == "catalog.Brand"
    assert brands_blueprint.topic.endswith(".brand") and brands_blueprint.topic != products_blueprint.topic
    assert brands_blueprint.consumer_group != products_blueprint.consumer_group
    assert brands_blueprint.live_index().revision == brands_blueprint.latest_revision()


def test_brands_converge_under_random_writes(brands_blueprint, engine, client):
    rng = random.Random(7)
    deleted, ids = {}, []
    with pipeline(brands_blueprint):
        for step in range(400):
            roll = rng.random()
            if roll < 0.3 or not ids:
                ids.append(brands.create_brand(tenant_id=f"t{step % 3}", name=f"Acme {rng.randint(1, 99)}",
                                               country=rng.choice(["DE", "FR", "US"])).pk)
            elif roll < 0.85:
                brands.update_brand(rng.choice(ids), name=f"Brand {rng.randint(1, 999)}", country=rng.choice(["IT", "ES"]))
            else:
                pk = ids.pop(rng.randrange(len(ids)))
                deleted[str(pk)] = brands.delete_brand(pk)
        live = brands_blueprint.live_index().name
        wait_until(lambda: not brand_diff(engine, live, deleted), timeout=120, message="brands index equals the table")
    assert engine.count(brands_blueprint.read_alias) == Brand.objects.count()
    report = reconcile(brands_blueprint, dry_run=True)
    assert report.status == "completed" and report.drift == 0, (report.error, report.sample_ids)
    assert report.checked_db == Brand.objects.count()
    indexed = value(scrape(client), "searchsync_events_total", blueprint=brands_blueprint.name, outcome="indexed")
    assert indexed and indexed >= Brand.objects.count()


def test_brands_are_backfilled_on_their_own(brands_blueprint, products_blueprint, engine, eager_celery):
    # Rows written behind the pipeline's back: only a backfill brings them into the index.
    Brand.objects.bulk_create([Brand(tenant_id="t", name=f"Imported {i}", country="NL") for i in range(1200)])
    products_before = set(products_blueprint.indices.values_list("name", flat=True))
    backfill = backfills.start_build(brands_blueprint, parallelism=2)
    backfill.refresh_from_db()
    assert backfill.status == Backfill.Status.COMPLETED and backfill.rows_total == 1200
    assert not brand_diff(engine, backfill.target_index.name, {})
    assert set(products_blueprint.indices.values_list("name", flat=True)) == products_before


def test_a_blueprint_can_be_disabled_and_enabled(brands_blueprint, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("viewer", password="x"))
    assert f'data-index="{brands_blueprint.name}"' in client.get("/partials/indices/").content.decode()
    call_command("blueprints", "disable", brands_blueprint.name)
    brands_blueprint.refresh_from_db()
    assert not brands_blueprint.enabled
    assert f'data-index="{brands_blueprint.name}"' not in client.get("/partials/indices/").content.decode()
    call_command("blueprints", "enable", brands_blueprint.name)
    brands_blueprint.refresh_from_db()
    assert brands_blueprint.enabled


def test_bootstrap_creates_a_registered_blueprint_from_its_files(transactional_db, isolated_pipeline, unique, engine,
                                                                  tmp_path, monkeypatch):
    from pathlib import Path

    from indexing.control import registry
    from indexing.management.commands import bootstrap
    from indexing.models import IndexBlueprint

    name = f"boot-{unique}"
    files = Path(registry.get_registration("brands").files_dir)
    for kind in ("mapping", "event.schema", "blueprint"):
        (tmp_path / f"{name}_{kind}.json").write_text((files / f"brands_{kind}.json").read_text())
    registration = registry.register_blueprint(name, tmp_path, aggregate_type="brand", source_model="catalog.Brand")
    monkeypatch.setattr(bootstrap, "registrations", lambda: [registration])
    brands.create_brand(tenant_id="t", name="Acme", country="DE")
    try:
        call_command("bootstrap")
        blueprint = IndexBlueprint.objects.get(name=name)
        revision = blueprint.latest_revision()
        assert revision.number == 1 and revision.created_by == "bootstrap"
        assert revision.validation["documents"] == 1  # validated on a scratch index first
        assert blueprint.live_index().revision == revision
        # Again, with changed code: the definition changes only by revisions; code-level fields follow.
        registration = registry.register_blueprint(name, tmp_path, aggregate_type="brand",
                                                   source_model="catalog.Brand", canary_payload={"name": "canary"})
        monkeypatch.setattr(bootstrap, "registrations", lambda: [registration])
        call_command("bootstrap")
        assert blueprint.revisions.count() == 1 and blueprint.indices.count() == 1
        blueprint.refresh_from_db()
        assert blueprint.canary_payload == {"name": "canary"}
    finally:
        registry._REGISTRY.pop(name, None)
        for index in IndexBlueprint.objects.get(name=name).indices.all():
            engine.delete_index(index.name)


def test_demo_seed_writes_brands_through_the_outbox(transactional_db):
    from indexing.models import OutboxEvent

    from catalog.models import Category, Product

    call_command("seed_catalog", products=2000, seed=1)
    assert Brand.objects.count() == 30
    assert OutboxEvent.objects.filter(aggregate_type="brand").count() == 30
    # Every product references a brand and a leaf category of its own tenant; a few brands carry many.
    assert Category.objects.count() == 3 * 22  # per tenant: 3 roots, 6 children, 13 leaves
    assert not Product.objects.filter(brand__isnull=True).exists()
    assert not Product.objects.exclude(brand__tenant_id=models.F("tenant_id")).exists()
    assert not Product.objects.filter(category__children__isnull=False).exists()
    biggest = Brand.objects.annotate(n=models.Count("products")).order_by("-n").first()
    assert biggest.n > 2000 / 30 * 2


def test_brands_cutover_passes_its_guards_and_goes_live(brands_blueprint, engine, eager_celery, django_user_model):
    from django.contrib.auth.models import Permission

    from backfills import cutover as cutovers
    from backfills.models import Cutover

    approve = Permission.objects.get(codename="approve_cutover")
    requester, approver = (django_user_model.objects.create_user(n, password="x") for n in ("req", "appr"))
    for user in (requester, approver):
        user.user_permissions.add(approve)
    Brand.objects.bulk_create([Brand(tenant_id="t", name=f"Acme {i}", country="US") for i in range(40)])
    cutover = cutovers.start_build(cutovers.request(brands_blueprint, requester), requester)
    cutover.refresh_from_db()
    assert cutover.state == Cutover.State.AWAITING_APPROVAL, cutover.guard_results
    assert "golden query: brand name" in [g["name"] for g in cutover.guard_results]
    cutovers.execute(cutovers.approve(cutover, approver), approver)
    assert set(engine.get_alias(brands_blueprint.read_alias)) == {cutover.to_index.name}
    assert engine.count(brands_blueprint.read_alias) == 40
