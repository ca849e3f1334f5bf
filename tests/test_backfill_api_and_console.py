"""Backfills and cutovers through the REST API and the console: validation, permissions, confirm steps."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from backfills.models import Backfill, Cutover
from catalog import services as catalog

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])



@pytest.fixture
def users(django_user_model):
    approve = Permission.objects.get(codename="approve_cutover")
    admin1 = django_user_model.objects.create_user("admin1", password="pw")
    admin2 = django_user_model.objects.create_user("admin2", password="pw")
    for u in (admin1, admin2):
        u.user_permissions.add(approve)
    operator = django_user_model.objects.create_user("op", password="pw")
    operator.user_permissions.add(Permission.objects.get(codename="operate_pipeline"))
    return admin1, admin2, operator


def api_as(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_backfill_api_validates_schedules_and_steers(products_blueprint, users, eager_celery):
    _, _, operator = users
    api = api_as(operator)
    bad = api.post("/api/v1/backfills/", {"blueprint": "nope", "selection": {"kind": "range", "start_id": 5, "end_id": 1},
                                          "rows_per_second": 0}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()) == {"blueprint", "selection", "rows_per_second"}
    catalog.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=1) for i in range(50)])
    made = api.post("/api/v1/backfills/", {"blueprint": products_blueprint.name, "selection": {"kind": "tenant", "tenant_id": "t"},
                                           "rows_per_second": 10_000}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["status"] == "completed" and body["progress"]["percent"] == 100.0 and body["rows_total"] == 50
    detail = api.get(f"/api/v1/backfills/{body['id']}/").json()
    assert detail["progress"]["chunks"]["COMPLETED"] == 1
    # A finished backfill cannot be paused: a 409 with the reason, not a 500.
    refused = api.post(f"/api/v1/backfills/{body['id']}/pause/")
    assert refused.status_code == 409 and "cannot go from completed" in refused.json()["detail"]
    assert api.post(f"/api/v1/backfills/{body['id']}/throttle/", {"rows_per_second": -1}, format="json").status_code == 400
    assert api.post(f"/api/v1/backfills/{body['id']}/throttle/", {"rows_per_second": 500}, format="json").json()["rows_per_second"] == 500


def test_cutover_api_enforces_four_eyes_and_permissions(products_blueprint, users, eager_celery):
    admin1, admin2, operator = users
    catalog.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=1) for i in range(100)])
    from indexing.outbox.relay import OutboxRelay

    OutboxRelay().drain()
    created = api_as(admin1).post("/api/v1/cutovers/", {"blueprint": products_blueprint.name}, format="json")
    assert created.status_code == 201, created.content
    cutover = created.json()
    assert cutover["state"] == "awaiting_approval", cutover["guard_results"]
    url = f"/api/v1/cutovers/{cutover['id']}"
    assert api_as(admin1).post(f"{url}/approve/").status_code == 403   # the requester (four eyes)
    assert api_as(operator).post(f"{url}/approve/").status_code == 403  # no permission
    assert api_as(admin2).post(f"{url}/execute/").status_code == 409    # not approved yet
    assert api_as(admin2).post(f"{url}/approve/").json()["approved_by"] == "admin2"
    live = api_as(admin2).post(f"{url}/execute/").json()
    assert live["state"] == "live" and [s["step"] for s in live["steps"]][-1] == "swapped"
    assert api_as(admin1).post(f"{url}/rollback/").json()["state"] == "rolled_back"
    assert api_as(admin1).post("/api/v1/cutovers/", {"blueprint": "missing"}, format="json").status_code == 400


def test_console_backfill_form_errors_start_and_cancel_confirm(products_blueprint, users, client, eager_celery):
    _, _, operator = users
    client.force_login(operator)
    page = client.post("/backfills/", {"blueprint": products_blueprint.name, "kind": "range", "start_id": "9",
                                       "end_id": "1", "parallelism": "2"})
    assert page.status_code == 200 and "start_id must not be greater than end_id" in page.content.decode()
    catalog.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=1) for i in range(20)])
    started = client.post("/backfills/", {"blueprint": products_blueprint.name, "kind": "all", "parallelism": "1",
                                          "rows_per_second": "1000"}, follow=True)
    assert started.status_code == 200 and "progressbar" in started.content.decode()
    backfill = Backfill.objects.get()
    assert backfill.status == "completed"
    Backfill.objects.filter(pk=backfill.pk).update(status="paused")
    confirm = client.post(f"/backfills/{backfill.pk}/cancel/")
    assert "Cancel this backfill?" in confirm.content.decode()
    backfill.refresh_from_db()
    assert backfill.status == "paused"
    client.post(f"/backfills/{backfill.pk}/cancel/", {"confirmed": "on"})
    backfill.refresh_from_db()
    assert backfill.status == "cancelled"


def test_console_cutover_wizard_shows_approve_only_to_another_admin(products_blueprint, users, client, eager_celery):
    admin1, admin2, operator = users
    catalog.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=1) for i in range(30)])
    client.force_login(admin1)
    client.post("/cutovers/", {"blueprint": products_blueprint.name})
    cutover = Cutover.objects.get()
    assert cutover.state == "awaiting_approval"
    own = client.get(f"/cutovers/{cutover.pk}/").content.decode()
    assert "Waiting for an admin other than admin1" in own and ">Approve<" not in own
    client.force_login(operator)
    assert ">Approve<" not in client.get(f"/cutovers/{cutover.pk}/").content.decode()
    client.force_login(admin2)
    page = client.get(f"/cutovers/{cutover.pk}/").content.decode()
    assert ">Approve<" in page and "count parity" in page
    client.post(f"/cutovers/{cutover.pk}/approve/")
    confirm = client.post(f"/cutovers/{cutover.pk}/execute/").content.decode()
    assert "Swap the aliases?" in confirm
    cutover.refresh_from_db()
    assert cutover.state == "awaiting_approval"
    client.post(f"/cutovers/{cutover.pk}/execute/", {"confirmed": "on"})
    cutover.refresh_from_db()
    assert cutover.state == "live"


def test_console_unknown_actions_are_404_not_500(products_blueprint, users, client, eager_celery):
    admin1, _, operator = users
    catalog.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=1) for i in range(5)])
    client.force_login(operator)
    client.post("/backfills/", {"blueprint": products_blueprint.name, "kind": "all", "parallelism": "1"})
    backfill = Backfill.objects.get()
    assert client.post(f"/backfills/{backfill.pk}/explode/").status_code == 404
    client.force_login(admin1)
    client.post("/cutovers/", {"blueprint": products_blueprint.name})
    cutover = Cutover.objects.get()
    assert client.post(f"/cutovers/{cutover.pk}/explode/").status_code == 404
    assert client.post(f"/cutovers/{cutover.pk}/explode/", {"confirmed": "on"}).status_code == 404


def test_console_partials_poll_themselves_until_final_and_offer_only_allowed_actions(products_blueprint, users, client,
                                                                                     eager_celery):
    admin1, admin2, operator = users
    catalog.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=1) for i in range(5)])
    client.force_login(operator)
    client.post("/backfills/", {"blueprint": products_blueprint.name, "kind": "all", "parallelism": "1"})
    backfill = Backfill.objects.get()
    Backfill.objects.filter(pk=backfill.pk).update(status="paused")
    paused = client.get(f"/backfills/{backfill.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert paused.startswith('<section class="card" id="backfill-progress"')
    assert 'hx-swap="outerHTML"' in paused and "every 2s" in paused
    assert ">Resume<" in paused and ">Pause<" not in paused and "Cancel…" in paused
    assert 'class="status grey"' in paused
    Backfill.objects.filter(pk=backfill.pk).update(status="completed")
    done = client.get(f"/backfills/{backfill.pk}/").content.decode()
    assert "hx-trigger" not in done  # final: no more polling
    assert "Set limit" not in done and ">Resume<" not in done and 'class="status green"' in done

    client.force_login(admin1)
    client.post("/cutovers/", {"blueprint": products_blueprint.name})
    cutover = Cutover.objects.get()
    own = client.get(f"/cutovers/{cutover.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="cutover-body"' in own and 'hx-swap="outerHTML"' in own
    assert ">Approve<" not in own and "Swap aliases" not in own and "Run guards again" in own
    client.force_login(operator)
    viewer = client.get(f"/cutovers/{cutover.pk}/").content.decode()
    assert "Run guards again" not in viewer and "Cancel…" not in viewer  # operators only look at cutovers
    client.force_login(admin2)
    client.post(f"/cutovers/{cutover.pk}/cancel/", {"confirmed": "on"})
    cancelled = client.get(f"/cutovers/{cutover.pk}/").content.decode()
    assert 'data-cutover-state="cancelled"' in cancelled and "hx-trigger" not in cancelled
    assert 'class="status grey"' in cancelled and "Cancel…" not in cancelled
