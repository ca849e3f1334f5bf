"""Cutover steps are compare-and-set and crash-safe: concurrent approvals or executions have exactly
one winner, and an alias swap interrupted before its record is finished by the beat task."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from backfills import cutover as cutovers
from backfills.models import Cutover
from backfills.tasks import finish_interrupted_cutovers
from catalog import services as catalog
from indexing.engines import get_engine
from indexing.models import PhysicalIndex

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def admins(django_user_model):
    approve = Permission.objects.get(codename="approve_cutover")
    users = []
    for name in ("requester", "admin-a", "admin-b"):
        user = django_user_model.objects.create_user(name, password="x")
        user.user_permissions.add(approve)
        users.append(django_user_model.objects.get(pk=user.pk))  # fresh permission cache
    return users


@pytest.fixture
def awaiting(products_blueprint, eager_celery, admins):
    catalog.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=1)
                                  for i in range(50)])
    cutover = cutovers.request(products_blueprint, admins[0])
    cutovers.start_build(cutover, admins[0])
    cutover.refresh_from_db()
    assert cutover.state == Cutover.State.AWAITING_APPROVAL, cutover.guard_results
    return cutover


def race(*calls):
    """Run the calls at the same moment in threads; return (results, errors)."""
    from django.db import connections

    barrier = threading.Barrier(len(calls))
    results, errors = [], []

    def run(fn):
        try:
            barrier.wait()
            results.append(fn())
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def test_two_concurrent_approvals_have_exactly_one_winner(awaiting, admins):
    _, a, b = admins
    copy_a, copy_b = Cutover.objects.get(pk=awaiting.pk), Cutover.objects.get(pk=awaiting.pk)
    results, errors = race(lambda: cutovers.approve(copy_a, a), lambda: cutovers.approve(copy_b, b))
    assert len(results) == 1 and len(errors) == 1, (results, errors)
    assert isinstance(errors[0], cutovers.CutoverConflict)
    awaiting.refresh_from_db()
    assert awaiting.approved_by_id == results[0].approved_by.pk
    assert awaiting.steps.filter(step="approved").count() == 1


def test_two_concurrent_executions_swap_once(awaiting, admins, products_blueprint, engine):
    _, a, b = admins
    cutovers.approve(awaiting, a)
    copies = [Cutover.objects.select_related("blueprint", "from_index", "to_index").get(pk=awaiting.pk)
              for _ in range(2)]
    results, errors = race(lambda: cutovers.execute(copies[0], a), lambda: cutovers.execute(copies[1], b))
    assert len(results) == 1 and len(errors) == 1, (results, errors)
    assert isinstance(errors[0], cutovers.CutoverConflict)
    awaiting.refresh_from_db()
    assert awaiting.state == Cutover.State.LIVE
    assert awaiting.steps.filter(step="swap started").count() == 1
    assert awaiting.steps.filter(step="swapped").count() == 1
    assert set(engine.get_alias(products_blueprint.read_alias)) == {awaiting.to_index.name}


@pytest.mark.parametrize("reached_cluster", [True, False], ids=["after-the-request", "before-the-request"])
def test_a_crash_around_the_alias_swap_is_finished_by_the_beat_task(awaiting, admins, products_blueprint, engine,
                                                                    monkeypatch, reached_cluster):
    _, a, _ = admins
    cutovers.approve(awaiting, a)
    engine_class = type(get_engine())
    real = engine_class.update_aliases

    def crash(self, actions):
        if reached_cluster:
            real(self, actions)
        raise SystemExit("process killed around the _aliases request")

    monkeypatch.setattr(engine_class, "update_aliases", crash)
    with pytest.raises(SystemExit):
        cutovers.execute(awaiting, a)
    monkeypatch.setattr(engine_class, "update_aliases", real)
    awaiting.refresh_from_db()
    assert awaiting.state == Cutover.State.SWAPPING  # the intent survived the crash

    assert finish_interrupted_cutovers() == 0  # too recent: the request may still be finishing it
    Cutover.objects.filter(pk=awaiting.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert finish_interrupted_cutovers() == 1

    awaiting.refresh_from_db()
    assert awaiting.state == Cutover.State.LIVE and awaiting.rollback_until is not None
    assert set(engine.get_alias(products_blueprint.read_alias)) == {awaiting.to_index.name}
    assert set(engine.get_alias(products_blueprint.write_alias)) == {awaiting.to_index.name}
    assert PhysicalIndex.objects.get(pk=awaiting.to_index_id).state == PhysicalIndex.State.LIVE
    assert PhysicalIndex.objects.get(pk=awaiting.from_index_id).state == PhysicalIndex.State.READY
    steps = list(awaiting.steps.values_list("step", flat=True))
    assert steps[-2:] == ["swap started", "swapped (finished after an interruption)"]
    assert finish_interrupted_cutovers() == 0  # idempotent


def test_a_stale_copy_cannot_move_a_cutover_that_moved_on(awaiting, admins):
    requester, a, _ = admins
    stale = Cutover.objects.get(pk=awaiting.pk)
    cutovers.cancel(awaiting, requester)
    with pytest.raises(cutovers.CutoverConflict):
        cutovers.verify(stale, a)
    awaiting.refresh_from_db()
    assert awaiting.state == Cutover.State.CANCELLED
