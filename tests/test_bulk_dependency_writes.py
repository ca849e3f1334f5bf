"""Bulk writes of joined rows (``QuerySet.update()`` on brands and categories) fan out like single
ones, with versions that still grow; and the write lock orders only what the versions need."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, transaction

from backfills.models import Backfill
from backfills.runner import ChunkRunner
from catalog import brands, categories
from catalog.models import Brand, Category
from tests.helpers import db_thread, index_state, pipeline, wait_converged
from tests.test_fanout import bulk, fanouts, load_index, manual_fanouts  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


def run_fanouts(blueprint, engine, index, versions=True):
    with pipeline(blueprint):
        runners = [db_thread(ChunkRunner(f.pk).run) for f in fanouts()]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
        # Versions are compared exactly: documents carrying the new names must have been accepted
        # above the old ones, so the bulk-updated rows got new stamps. (A change no document shows
        # stamps its row too, without a fan-out: versions are then compared no more.)
        wait_converged(engine, index, timeout=180, versions=versions)


def test_queryset_updates_of_brands_and_categories_fan_out(products_blueprint, engine, manual_fanouts):
    acme, globex, initech = (brands.create_brand(tenant_id="t1", name=n) for n in ("Acme", "Globex", "Initech"))
    root = categories.create_category(tenant_id="t1", name="Root")
    leaf = categories.create_category(tenant_id="t1", name="Leaf", parent=root)
    bulk(2000, brand_id=acme.pk)
    bulk(1000, brand_id=globex.pk, category_id=leaf.pk)
    bulk(300, brand_id=initech.pk)
    index = products_blueprint.live_index().name
    load_index(engine, index)
    before = index_state(engine, index)

    assert Brand.objects.filter(pk__in=[acme.pk, globex.pk]).update(name="Merged") == 2
    [fanout] = fanouts()
    assert fanout.selection == {"kind": "dependency", "on": "catalog.Brand", "ids": sorted([acme.pk, globex.pk])}
    assert fanout.rows_total == 3000
    run_fanouts(products_blueprint, engine, index)
    after = index_state(engine, index)
    merged = {k for k, (_, doc) in after.items() if doc["brand"] == "Merged"}
    assert len(merged) == 3000
    assert all(after[k] == before[k] for k in set(after) - merged)  # Initech's products: the same writes

    Backfill.objects.all().delete()
    # Fields no document shows start nothing.
    Brand.objects.filter(pk=initech.pk).update(country="DE")
    assert not fanouts()
    assert Category.objects.filter(pk=root.pk).update(name="Root Two") == 1
    [fanout] = fanouts()
    assert fanout.rows_total == 1000  # the subtree's products
    run_fanouts(products_blueprint, engine, index, versions=False)
    paths = {tuple(doc["category_path"]) for _, doc in index_state(engine, index).values()}
    assert paths == {(), ("Root Two", "Leaf")}


def _holding_a_brand_write(brand_id, inside: threading.Event, release: threading.Event):
    def hold():
        with transaction.atomic():
            brands.update_brand(brand_id, name="Held")
            inside.set()
            release.wait(30)

    return db_thread(hold)


def test_brand_writes_run_side_by_side_while_category_writes_wait_for_them(transactional_db):
    a, b = brands.create_brand(tenant_id="t1", name="A"), brands.create_brand(tenant_id="t1", name="B")
    shelf = categories.create_category(tenant_id="t1", name="Shelf")
    inside, release = threading.Event(), threading.Event()
    holder = _holding_a_brand_write(a.pk, inside, release)
    holder.start()
    try:
        assert inside.wait(10)
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SET LOCAL lock_timeout = '2s'")
            brands.update_brand(b.pk, name="B2")  # another brand: no document shows both, no wait
            Brand.objects.filter(pk=b.pk).update(name="B3")
        # A category write must not take its stamp while a brand write is uncommitted: a product
        # showing both would get a version that does not order the two changes.
        with pytest.raises(OperationalError, match="lock timeout"):
            with transaction.atomic():
                with connection.cursor() as cur:
                    cur.execute("SET LOCAL lock_timeout = '300ms'")
                categories.update_category(shelf.pk, name="Shelf Two")
    finally:
        release.set()
        holder.join()
    categories.update_category(shelf.pk, name="Shelf Two")
    assert Category.objects.get(pk=shelf.pk).name == "Shelf Two" and Brand.objects.get(pk=b.pk).name == "B3"


def test_a_bulk_move_gets_the_tree_checks_of_a_single_move(transactional_db, manual_fanouts):
    root = categories.create_category(tenant_id="t1", name="Root")
    child = categories.create_category(tenant_id="t1", name="Child", parent=root)
    grandchild = categories.create_category(tenant_id="t1", name="Grandchild", parent=child)
    elsewhere = categories.create_category(tenant_id="t2", name="Elsewhere")

    with pytest.raises(categories.InvalidMove, match="descendants"):
        Category.objects.filter(pk__in=[root.pk, elsewhere.pk]).update(parent=grandchild)
    with pytest.raises(categories.InvalidMove, match="same tenant"):
        Category.objects.filter(pk=elsewhere.pk).update(parent_id=root.pk)
    # Refused as a whole: no row moved, no stamp taken, no fan-out scheduled.
    assert Category.objects.get(pk=root.pk).parent_id is None
    assert Category.objects.get(pk=elsewhere.pk).parent_id is None
    assert not fanouts()

    assert Category.objects.filter(pk=grandchild.pk).update(parent=root) == 1
    assert Category.objects.get(pk=grandchild.pk).parent_id == root.pk
