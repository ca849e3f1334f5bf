"""The audit trail: append-only, and every operator and admin action in it with its actor."""

import os
import time

import pytest
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

import audit
from audit.models import AppendOnly, AuditEvent
from audit.queries import matching
from backfills.models import Backfill
from catalog import services as catalog
from indexing.models import DeadLetter, UnmappedField
from indexing.permissions import ensure_roles

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


def api_as(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def people(django_user_model):
    ensure_roles()
    op = django_user_model.objects.create_user("op", password="x")
    op.groups.add(Group.objects.get(name="operators"))
    admin1 = django_user_model.objects.create_user("admin1", password="x")
    admin2 = django_user_model.objects.create_user("admin2", password="x")
    for admin in (admin1, admin2):
        admin.groups.add(Group.objects.get(name="admins"))
    viewer = django_user_model.objects.create_user("viewer", password="x")
    return {"op": op, "admin1": admin1, "admin2": admin2, "viewer": viewer}


def actions_of(actor):
    return set(AuditEvent.objects.filter(actor=actor).values_list("action", flat=True))


def test_events_are_append_only_in_the_orm_and_the_database():
    event = audit.record("someone", "test.action", "thing:1", details={"n": 1})
    event.target = "changed"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(target="changed")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    for sql in ("UPDATE audit_auditevent SET target = 'changed'", "DELETE FROM audit_auditevent"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.get(pk=event.pk).target == "thing:1"


def test_dead_letter_backfill_reconciliation_and_unmapped_actions_are_recorded(people, products_blueprint,
                                                                                eager_celery, client):
    op = api_as(people["op"])
    letters = [DeadLetter.objects.create(blueprint=products_blueprint, topic="t", partition=0, offset=i, raw_value=b"x",
                                         reason="undecodable", error="e") for i in range(3)]
    assert op.post(f"/api/v1/dead-letters/{letters[0].pk}/discard/").json() == {"discarded": 1}
    assert op.post("/api/v1/dead-letters/discard/", {"ids": [letters[1].pk]}, format="json").status_code == 200
    client.force_login(people["op"])
    client.post("/dead-letters/action/", {"action": "discard", "scope": "selected", "ids": [letters[2].pk],
                                          "confirmed": "1"})
    from indexing.core.topics import ensure_topic

    ensure_topic(products_blueprint.topic)
    replayable = DeadLetter.objects.create(blueprint=products_blueprint, topic=products_blueprint.topic, partition=0,
                                           offset=9, key=b"1", raw_value=b"x", reason="undecodable", error="e")
    assert op.post("/api/v1/dead-letters/replay/", {"ids": [replayable.pk]}, format="json").json() == {"replayed": 1}
    assert AuditEvent.objects.get(action="dead_letters.replay", actor="op").details["ids"] == [replayable.pk]
    discards = AuditEvent.objects.filter(action="dead_letters.discard", actor="op")
    assert sorted(i for e in discards for i in e.details["ids"]) == sorted(d.pk for d in letters)
    assert all(e.ip_address == "127.0.0.1" for e in discards)

    catalog.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=1) for i in range(5)])
    made = op.post("/api/v1/backfills/", {"blueprint": products_blueprint.name, "rows_per_second": 1000}, format="json")
    url = f"/api/v1/backfills/{made.json()['id']}"
    assert op.post(f"{url}/throttle/", {"rows_per_second": 50}, format="json").status_code == 200
    Backfill.objects.filter(pk=made.json()["id"]).update(status=Backfill.Status.RUNNING)
    assert op.post(f"{url}/pause/").status_code == 200
    client.post(f"/backfills/{made.json()['id']}/resume/")
    Backfill.objects.filter(pk=made.json()["id"]).update(status=Backfill.Status.RUNNING)
    client.post(f"/backfills/{made.json()['id']}/cancel/", {"confirmed": "1"})
    assert op.post(f"{url}/pause/").status_code == 409
    throttle = AuditEvent.objects.get(action="backfill.throttle")
    assert throttle.details == {"rows_per_second": 50, "previous": 1000}
    assert AuditEvent.objects.filter(action="backfill.pause", outcome="refused", actor="op").exists()

    report = op.post("/api/v1/reconciliations/", {"blueprint": products_blueprint.name, "dry_run": True},
                     format="json").json()
    op.post(f"/api/v1/reconciliations/{report['id']}/throttle/", {"rows_per_second": 10}, format="json")

    field = UnmappedField.objects.create(index_name="i", field="colour")
    client.post(f"/unmapped-fields/{field.pk}/acknowledge/")
    assert {"dead_letters.discard", "backfill.start", "backfill.throttle", "backfill.pause", "backfill.resume",
            "backfill.cancel", "reconciliation.start", "reconciliation.throttle",
            "unmapped_field.acknowledge"} <= actions_of("op")


def test_cutover_steps_are_recorded_with_their_actors(people, products_blueprint, eager_celery):
    catalog.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=1) for i in range(20)])
    from indexing.outbox.relay import OutboxRelay

    OutboxRelay().drain()
    cutover = api_as(people["admin1"]).post("/api/v1/cutovers/", {"blueprint": products_blueprint.name},
                                            format="json").json()
    url = f"/api/v1/cutovers/{cutover['id']}"
    assert api_as(people["admin1"]).post(f"{url}/approve/").status_code == 403  # the requester cannot
    api_as(people["admin2"]).post(f"{url}/approve/")
    api_as(people["admin2"]).post(f"{url}/execute/")
    api_as(people["admin1"]).post(f"{url}/rollback/")
    assert {"cutover.requested", "cutover.build_started", "cutover.approval_refused", "cutover.rolled_back"} \
        <= actions_of("admin1")
    assert {"cutover.approved", "cutover.swapped"} <= actions_of("admin2")
    assert AuditEvent.objects.get(action="cutover.approval_refused").outcome == "refused"


def test_trail_is_filtered_on_the_console_page_and_in_the_api(people, client):
    audit.record(people["op"], "backfill.start", "backfill:1 x")
    audit.record(people["admin1"], "cutover.approved", "cutover:1 y")
    audit.record(people["admin1"], "cutover.swapped", "cutover:1 y")

    api = api_as(people["op"])
    body = api.get("/api/v1/audit/", {"action": "cutover"}).json()
    assert body["count"] == 2 and {e["action"] for e in body["results"]} == {"cutover.approved", "cutover.swapped"}
    assert api.get("/api/v1/audit/", {"actor": "op"}).json()["count"] == 1
    assert api.get("/api/v1/audit/", {"since": "2100-01-01T00:00:00Z"}).json()["count"] == 0
    assert api.get("/api/v1/audit/", {"limit": 1}).json()["next"]
    assert api.get("/api/v1/audit/", {"since": "yesterday"}).status_code == 400
    assert api_as(people["viewer"]).get("/api/v1/audit/").status_code == 403

    client.force_login(people["admin2"])
    page = client.get("/audit/", {"actor": "admin1", "action": "cutover.approved"}).content.decode()
    assert "<code>cutover.approved</code>" in page
    assert "<code>cutover.swapped</code>" not in page and "<code>backfill.start</code>" not in page
    client.force_login(people["viewer"])
    assert client.get("/audit/").status_code == 403


@pytest.fixture(params=["process cache", "redis"])
def counters(request, settings, unique):
    """The cache the counters live in: the test settings' per-process one, and Redis as in production (under a
    key prefix of this test's own, removed afterwards)."""
    if request.param != "redis":
        yield
        return
    import redis

    url, prefix = os.environ.get("SEARCHSYNC_CACHE_URL", settings.REDIS_URL), f"test-audit-{unique}"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                                   "KEY_PREFIX": prefix}}
    from django.core.cache import cache

    cache.set("probe", 1)
    assert redis.Redis.from_url(url).exists(f"{prefix}:1:probe")
    yield
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_failed_logins_are_recorded_bounded_per_username_address_and_window(client, settings, counters):
    settings.SEARCHSYNC_AUDIT = {"REPEAT_WINDOW_S": 10**6, "REPEAT_MAX_ROWS": 3}
    settings.AXES_FAILURE_LIMIT, settings.SEARCHSYNC_LOGIN_ADDRESS_FAILURE_LIMIT = 100, 0  # no lockout here

    def fail(username, address="203.0.113.9"):
        assert client.post("/accounts/login/", {"username": username, "password": "wrong"},
                           REMOTE_ADDR=address).status_code == 200

    for _ in range(6):
        fail("mallory")
    first = AuditEvent.objects.get(action="login.failed")
    assert (first.actor, first.ip_address, first.outcome) == ("mallory", "203.0.113.9", "failed")
    assert "window_end" in first.details
    # Another username or address is another key; past REPEAT_MAX_ROWS keys, failures are only counted.
    fail("mallory", "198.51.100.7")
    for name in ("trent", "eve", "oscar"):
        fail(name)
    assert AuditEvent.objects.filter(action="login.failed").count() == 3

    # Once the window is over, one summary row counts everything, repeats per key first.
    from audit.bounded import summarise_closed_windows

    later = time.time() + 10**6
    assert len(summarise_closed_windows(now=later)) == 1 and summarise_closed_windows(now=later) == []
    summary = AuditEvent.objects.get(action="login.failed.repeats")
    assert summary.outcome == "failed" and summary.actor == "" and summary.ip_address is None
    assert {k: summary.details[k] for k in ("events", "rows", "not_written", "keys", "keys_without_row")} == \
        {"events": 10, "rows": 3, "not_written": 7, "keys": 5, "keys_without_row": 2}
    assert summary.details["repeated"] == [{"username": "mallory", "ip_address": "203.0.113.9", "events": 6}]
    # Filtering the trail by action=login.failed shows both.
    assert set(matching(action="login.failed").values_list("action", flat=True)) == {"login.failed",
                                                                                    "login.failed.repeats"}


def test_refused_changes_are_recorded_bounded_in_the_api_and_the_console(people, client, settings):
    settings.SEARCHSYNC_AUDIT = {"REPEAT_WINDOW_S": 10**6, "REPEAT_MAX_ROWS": 100}
    operator = api_as(people["op"])
    for _ in range(3):
        assert operator.post("/api/v1/cutovers/7/approve/").status_code == 403
    refused = AuditEvent.objects.get(action="permission.refused")
    assert (refused.actor, refused.outcome, refused.target) == ("op", "refused", "POST /api/v1/cutovers/7/approve/")
    assert "approve_cutover" in refused.details["reason"] and refused.details["view"] == "cutover-approve"
    client.force_login(people["op"])
    assert client.post("/cutovers/", {"blueprint": "products"}).status_code == 403
    console = AuditEvent.objects.get(action="permission.refused", target="POST /cutovers/")
    assert console.actor == "op" and "approve_cutover" in console.details["reason"]
    # Reads are not changes, and calls without a user are throttled, not recorded.
    assert api_as(people["viewer"]).get("/api/v1/audit/").status_code == 403
    assert APIClient().post("/api/v1/cutovers/7/approve/").status_code == 401
    assert AuditEvent.objects.filter(action__startswith="permission.refused").count() == 2


def test_catalog_writes_through_the_api_are_recorded(people):
    writer = api_as(people["op"])
    brand = writer.post("/api/v1/catalog/brands/", {"tenant_id": "t", "name": "Acme"}, format="json").json()["id"]
    assert writer.patch(f"/api/v1/catalog/brands/{brand}/", {"name": "Acme 2"}, format="json").status_code == 200
    product = writer.post("/api/v1/catalog/products/", {"tenant_id": "t", "title": "Desk", "price_minor": 1,
                                                        "available_qty": 1, "brand": brand, "description": "d" * 500},
                          format="json").json()["id"]
    assert writer.patch(f"/api/v1/catalog/products/{product}/", {"price_minor": 5}, format="json").status_code == 200
    assert writer.delete(f"/api/v1/catalog/products/{product}/").status_code == 204
    assert writer.delete(f"/api/v1/catalog/brands/{brand}/").status_code == 204
    category = writer.post("/api/v1/catalog/categories/", {"tenant_id": "t", "name": "Home"}, format="json").json()["id"]
    # A refused write leaves nothing.
    assert writer.patch(f"/api/v1/catalog/categories/{category}/", {"parent": category}, format="json").status_code == 400

    events = AuditEvent.objects.filter(actor="op").order_by("id")
    assert [(e.action, e.target) for e in events] == [
        ("brand.create", f"brand:{brand}"), ("brand.update", f"brand:{brand}"), ("product.create", f"product:{product}"),
        ("product.update", f"product:{product}"), ("product.delete", f"product:{product}"),
        ("brand.delete", f"brand:{brand}"), ("category.create", f"category:{category}")]
    assert events.get(action="brand.update").details == {"tenant_id": "t", "changes": {"name": "Acme 2"}}
    created = events.get(action="product.create").details["changes"]
    assert created["brand"] == brand and created["description"] == "d" * 200 + "…"
    assert all(e.ip_address == "127.0.0.1" for e in events)


def test_client_address_trusts_only_the_configured_proxies(settings, rf):
    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 10.0.0.9", REMOTE_ADDR="10.0.0.1")
    settings.SEARCHSYNC_TRUSTED_PROXIES = 0
    assert audit.client_ip(request) == "10.0.0.1"  # a client-sent X-Forwarded-For is ignored
    settings.SEARCHSYNC_TRUSTED_PROXIES = 1
    assert audit.client_ip(request) == "10.0.0.9"  # the entry our proxy appended, not the spoofable first one
