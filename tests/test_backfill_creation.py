"""A backfill is created with its chunks or not at all: selections PostgreSQL would refuse are a
400 up front, a failing plan leaves nothing behind, and the sweep fails a planned backfill that
never got chunks instead of leaving it waiting forever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backfills import planner, services
from backfills.models import Backfill
from backfills.tasks import resume_stalled_backfills
from catalog import services as catalog

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

BAD_SELECTIONS = [
    {"kind": "updated", "until": "2024-01-01T00:00:00+20:00"},
    {"kind": "updated", "since": "2024-01-01T00:00:00-23:59"},
    {"kind": "updated", "since": "2024-01-01T00:00:00+16:00"},
    {"kind": "updated", "since": "0001-01-01T00:00:00+05:00"},
    {"kind": "updated", "until": "9999-12-31T23:59:59-05:00"},
    {"kind": "updated", "since": 1704067200},
    {"kind": "updated", "since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
    {"kind": "updated", "since": "yesterday"},
    {"kind": "range", "start_id": 1, "end_id": 2**63},
    {"kind": "range", "start_id": -(2**63) - 1, "end_id": 1},
    {"kind": "range", "start_id": True, "end_id": 5},
    {"kind": "ids", "ids": [1, 2**70]},
    {"kind": "ids", "ids": [1.5]},
    {"kind": "ids", "ids": list(range(70_000))},
    {"kind": "tenant", "tenant_id": 12},
    {"kind": "tenant", "tenant_id": "t" * 256},
    {"kind": "tenant", "tenant_id": "a\u0000"},
]


@pytest.mark.parametrize("selection", BAD_SELECTIONS, ids=[str(s)[:60] for s in BAD_SELECTIONS])
def test_selections_postgres_would_refuse_are_400_and_store_nothing(operator_api, products_blueprint, selection):
    response = operator_api.post("/api/v1/backfills/", {"blueprint": products_blueprint.name, "selection": selection},
                                 format="json")
    assert response.status_code == 400, response.content[:300]
    assert "selection" in response.json() or "NUL" in response.json().get("detail", "")
    if selection.get("ids") and len(selection["ids"]) > 10_000:
        assert "at most 10000" in response.json()["selection"][0]
    assert not Backfill.objects.exists()


@pytest.mark.parametrize("since,until", [("2024-01-01T00:00:00+14:00", "2024-01-02T00:00:00-12:00"),
                                         ("2024-01-01T00:00:00+15:59", None), (None, "2024-01-01T00:00:00")])
def test_any_offset_postgres_takes_is_accepted_and_stored_in_utc(operator_api, products_blueprint, eager_celery,
                                                                  since, until):
    selection = {"kind": "updated", **({"since": since} if since else {}), **({"until": until} if until else {})}
    response = operator_api.post("/api/v1/backfills/", {"blueprint": products_blueprint.name, "selection": selection},
                                 format="json")
    assert response.status_code == 201, response.content
    stored = Backfill.objects.get().selection
    assert all(stored[b].endswith("+00:00") for b in ("since", "until") if b in stored)


def test_console_form_refuses_the_same_selections(admin_client, products_blueprint):
    for data in ({"kind": "range", "start_id": "1", "end_id": str(2**63)},
                 {"kind": "ids", "ids": ",".join(str(i) for i in range(10_001))},
                 {"kind": "tenant", "tenant_id": "t" * 256}):
        response = admin_client.post("/backfills/", {"blueprint": products_blueprint.name, "parallelism": "1", **data})
        assert response.status_code == 200 and b'class="error small"' in response.content, data
    assert not Backfill.objects.exists()


def test_a_failing_plan_leaves_no_backfill(products_blueprint, monkeypatch):
    catalog.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=1) for i in range(5)])

    def broken(backfill):
        Backfill.objects.filter(pk=backfill.pk).exists()  # the row is visible inside the transaction...
        raise RuntimeError("replica went away")

    monkeypatch.setattr(planner, "plan", broken)
    with pytest.raises(RuntimeError):
        services.schedule(products_blueprint)
    assert not Backfill.objects.exists()  # ...and gone with it


def test_sweep_fails_a_planned_backfill_without_chunks(products_blueprint, eager_celery):
    index = products_blueprint.live_index()
    stuck = Backfill.objects.create(blueprint=products_blueprint, target_index=index, selection={"kind": "all"})
    fresh = Backfill.objects.create(blueprint=products_blueprint, target_index=index, selection={"kind": "all"})
    Backfill.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(hours=1))
    resume_stalled_backfills()
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == Backfill.Status.FAILED and "no chunks" in stuck.error and stuck.finished_at
    assert fresh.status == Backfill.Status.PLANNED  # may still be planned by whoever created it


def test_list_summarises_large_id_selections(operator_api, products_blueprint):
    ids = list(range(1, 5_001))
    backfill = services.schedule(products_blueprint, selection={"kind": "ids", "ids": ids}, start=False)
    listed = operator_api.get("/api/v1/backfills/").json()["results"][0]["selection"]
    assert listed["ids_total"] == 5_000 and len(listed["ids"]) == 20 and listed["ids_truncated"] is True
    assert operator_api.get(f"/api/v1/backfills/{backfill.pk}/").json()["selection"]["ids"] == ids
