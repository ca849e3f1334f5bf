"""Invariant 10: a cutover is guarded, approved by someone else, atomic, and reversible."""

import copy
import threading

import pytest
from django.contrib.auth.models import Permission

from backfills import cutover as cutovers
from backfills.models import Cutover, GoldenQuery
from catalog import services as catalog
from indexing.control import revisions
from indexing.models import PhysicalIndex
from tests.helpers import pipeline, wait_converged, wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])



@pytest.fixture
def people(django_user_model):
    approve = Permission.objects.get(codename="approve_cutover")
    requester = django_user_model.objects.create_user("requester", password="x")
    requester.user_permissions.add(approve)
    approver = django_user_model.objects.create_user("approver", password="x")
    approver.user_permissions.add(approve)
    operator = django_user_model.objects.create_user("operator", password="x")
    return requester, approver, operator


def seed(n=3000):
    rows = [dict(tenant_id="t", title=("Ergonomic Chair" if i % 10 == 0 else f"Lamp {i}"), price_minor=i,
                 available_qty=1) for i in range(n)]
    catalog.create_products_bulk(rows)


def searcher(alias, engine, stop, failures, counts):
    while not stop.is_set():
        try:
            total = engine.search(alias, {"size": 0, "track_total_hits": True, "query": {"match_all": {}}})["hits"]["total"]["value"]
            counts.append(total)
            if total == 0:
                failures.append("empty result")
        except Exception as exc:
            failures.append(repr(exc))


def test_guarded_approved_atomic_cutover_and_rollback(products_blueprint, engine, eager_celery, people):
    requester, approver, operator = people
    seed()
    old = products_blueprint.live_index()
    with pipeline(products_blueprint):
        wait_converged(engine, old.name)
        chairs = sorted(str(p) for p in catalog.Product.objects.filter(title="Ergonomic Chair").values_list("pk", flat=True))[:5]
        GoldenQuery.objects.create(blueprint=products_blueprint, name="chairs", query={"match": {"title": "ergonomic chair"}},
                                   expected_ids=chairs, top_k=400, min_overlap=1.0)
        # The new revision changes the mapping: it shows in the diff an admin sees.
        definition = copy.deepcopy(products_blueprint.latest_revision().definition)
        definition["mappings"]["properties"]["brand"] = {"type": "keyword", "ignore_above": 256}
        revisions.propose(products_blueprint, definition, by="requester", reason="cap brand length")

        cutover = cutovers.request(products_blueprint, requester)
        with pytest.raises(cutovers.CutoverRefused):
            cutovers.request(products_blueprint, requester)  # one at a time
        cutovers.start_build(cutover, requester)  # the backfill runs inline here (eager Celery)
        cutover.refresh_from_db()
        assert cutover.state == Cutover.State.AWAITING_APPROVAL, cutover.guard_results
        assert cutover.guards_passed and len(cutover.guard_results) == 3 + len(definition["golden_queries"])
        assert '"ignore_above": 256' in cutover.mapping_diff
        new = cutover.to_index

        with pytest.raises(cutovers.CutoverRefused, match="someone other"):
            cutovers.approve(cutover, requester)
        with pytest.raises(cutovers.CutoverRefused, match="permission"):
            cutovers.approve(cutover, operator)
        with pytest.raises(cutovers.CutoverRefused, match="not been approved"):
            cutovers.execute(cutover, requester)
        cutovers.approve(cutover, approver)

        stop, failures, counts = threading.Event(), [], []
        thread = threading.Thread(target=searcher, args=(products_blueprint.read_alias, engine, stop, failures, counts))
        thread.start()
        try:
            # Searches run before, during and after the swap.
            wait_until(lambda: len(counts) >= 20, message="searches before the swap")
            cutovers.execute(cutover, requester)
            swapped_at = len(counts)
            catalog.create_product(tenant_id="t", title="After the swap", price_minor=1, available_qty=1)
            wait_until(lambda: len(counts) >= swapped_at + 20, message="searches after the swap")
        finally:
            stop.set()
            thread.join()
        assert not failures, failures[:5]
        assert set(engine.get_alias(products_blueprint.read_alias)) == {new.name}
        assert set(engine.get_alias(products_blueprint.write_alias)) == {new.name}
        new.refresh_from_db()
        old.refresh_from_db()
        assert new.state == PhysicalIndex.State.LIVE and old.state == PhysicalIndex.State.READY
        # During the rollback window the old index keeps receiving writes, so a rollback loses nothing.
        wait_converged(engine, new.name)
        wait_converged(engine, old.name)

        cutovers.rollback(cutover, approver)
        assert set(engine.get_alias(products_blueprint.read_alias)) == {old.name}
        old.refresh_from_db()
        assert old.state == PhysicalIndex.State.LIVE
    steps = list(cutover.steps.values_list("step", "actor", "ok"))
    assert ("approval refused", "requester", False) in steps and ("approved", "approver", True) in steps
    assert [s for s, _, ok in steps if ok] == ["requested", "build started", "build finished", "verified", "approved",
                                              "swap started", "swapped", "rollback started", "rolled back"]


def test_cutover_with_a_failing_guard_is_refused(products_blueprint, engine, eager_celery, people):
    requester, approver, _ = people
    seed(500)
    GoldenQuery.objects.create(blueprint=products_blueprint, name="impossible", query={"match": {"title": "lamp"}},
                               expected_ids=["999999999"], top_k=10, min_overlap=1.0)
    cutover = cutovers.request(products_blueprint, requester)
    cutovers.start_build(cutover, requester)
    cutover.refresh_from_db()
    assert cutover.state == Cutover.State.VERIFYING
    failed = [g for g in cutover.guard_results if not g["passed"]]
    assert [g["name"] for g in failed] == ["golden query: impossible"]
    with pytest.raises(cutovers.CutoverRefused):
        cutovers.approve(cutover, approver)
    with pytest.raises(cutovers.CutoverRefused):
        cutovers.execute(cutover, approver)
    assert set(engine.get_alias(products_blueprint.read_alias)) == {products_blueprint.live_index().name}
    cutovers.cancel(cutover, requester)
    cutover.to_index.refresh_from_db()
    assert cutover.to_index.state == PhysicalIndex.State.RETIRED


def test_count_parity_guard_catches_a_missing_document(products_blueprint, engine, eager_celery, people):
    from backfills import guards

    requester, _, _ = people
    seed(200)
    cutover = cutovers.request(products_blueprint, requester)
    cutovers.start_build(cutover, requester)
    cutover.refresh_from_db()
    assert cutover.guards_passed
    victim = str(catalog.Product.objects.first().pk)
    engine.client.delete(index=cutover.to_index.name, id=victim, refresh=True)
    parity = guards.count_parity(cutover.to_index, engine, attempts=1)
    sample = guards.reconciliation_sample(cutover.to_index, engine, size=1000)
    assert not parity.passed and parity.data == {"database": 200, "index": 199}
    assert not sample.passed and sample.data["drift"] == [victim]


def test_retired_index_is_deleted_after_the_rollback_window(products_blueprint, engine, eager_celery, people):
    from datetime import timedelta

    from django.utils import timezone

    requester, approver, _ = people
    seed(100)
    old = products_blueprint.live_index()
    cutover = cutovers.request(products_blueprint, requester)
    cutovers.start_build(cutover, requester)
    cutover.refresh_from_db()
    cutovers.approve(cutover, approver)
    cutovers.execute(cutover, approver)
    assert cutovers.retire_expired() == 0  # still inside the window
    assert cutovers.retire_expired(now=timezone.now() + timedelta(days=2)) == 1
    assert not engine.index_exists(old.name)
    cutover.refresh_from_db()
    assert cutover.state == Cutover.State.RETIRED
    with pytest.raises(cutovers.CutoverRefused):
        cutovers.rollback(cutover, approver)
