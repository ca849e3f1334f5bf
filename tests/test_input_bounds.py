"""Input the database or the process cannot take is a 400 with field errors, never a 500 or a
minutes-long request: bounded strings, integers within their columns, strict types, no NUL or lone
surrogates, bounded JSON nesting, list sizes and page sizes; product writes need a role."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from backfills.models import Backfill
from catalog.models import Product
from indexing.models import DeadLetter, OutboxEvent, Reconciliation

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

LIST_ENDPOINTS = ["/api/v1/catalog/products/", "/api/v1/dead-letters/", "/api/v1/backfills/", "/api/v1/cutovers/",
                  "/api/v1/reconciliations/"]
UNSAFE_STRINGS = ["\u0000", "a\u0000b", "\ud800", "x\udfffy"]
HUGE = 3_000_000_000


def post_json(client, path, body: str):
    """A raw JSON body: json.dumps would refuse some of what a real client can send."""
    return client.generic("POST", path, body, content_type="application/json")


def product(**overrides) -> dict:
    return {"tenant_id": "t1", "title": "Desk", "price_minor": 1, "available_qty": 1, **overrides}


# -- products ---------------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [
    ("title", 0), ("title", 1.5), ("title", True), ("title", ["x"]), ("title", {"x": 1}), ("title", None),
    ("title", ""), ("title", "   "), ("title", "x" * 301), ("tenant_id", 7), ("tenant_id", "t" * 65),
    ("description", "d" * 10_001), ("description", "d" * 1_100_000), ("brand_name", 3), ("brand_name", "b" * 201),
    ("price_minor", 2**63), ("price_minor", -1), ("available_qty", 2**31),
] + [("title", s) for s in UNSAFE_STRINGS] + [("description", s) for s in UNSAFE_STRINGS])
def test_product_writes_refuse_out_of_bounds_values(operator_api, field, value):
    body = json.dumps(product(**{field: value}))
    response = post_json(operator_api, "/api/v1/catalog/products/", body)
    assert response.status_code == 400, response.content[:300]
    errors = response.json()
    assert field in errors or "detail" in errors, errors
    assert not Product.objects.exists() and not OutboxEvent.objects.exists()


def test_product_update_refuses_non_strings_and_oversized_values(operator_api):
    created = operator_api.post("/api/v1/catalog/products/", product(description="d" * 10_000), format="json")
    assert created.status_code == 201, created.content
    pid = created.json()["id"]
    for body in ({"title": 0}, {"description": "d" * 10_001}, {"title": "\u0000"}):
        response = operator_api.patch(f"/api/v1/catalog/products/{pid}/", body, format="json")
        assert response.status_code == 400, (body, response.content[:200])
    assert Product.objects.get().version == 1 and OutboxEvent.objects.count() == 1


def test_product_writes_need_the_catalog_role(django_user_model, operator_api):
    from django.contrib.auth.models import Group

    from catalog.permissions import grant_product_writes
    from indexing.permissions import ensure_roles

    ensure_roles()
    grant_product_writes()
    pid = operator_api.post("/api/v1/catalog/products/", product(), format="json").json()["id"]
    nobody = APIClient()
    nobody.force_authenticate(django_user_model.objects.create_user("viewer", password="x"))
    assert nobody.get("/api/v1/catalog/products/").status_code == 200
    for method, path, body in [("post", "/api/v1/catalog/products/", product()),
                               ("put", f"/api/v1/catalog/products/{pid}/", product(title="X")),
                               ("patch", f"/api/v1/catalog/products/{pid}/", {"title": "X"}),
                               ("delete", f"/api/v1/catalog/products/{pid}/", None)]:
        response = getattr(nobody, method)(path, body, format="json")
        assert response.status_code == 403, (method, response.status_code)
        assert "write_products" in response.json()["detail"]
    assert Product.objects.get().title == "Desk" and OutboxEvent.objects.count() == 1
    for group in ("operators", "admins"):
        member = django_user_model.objects.create_user(f"in-{group}", password="x")
        member.groups.add(Group.objects.get(name=group))
        client = APIClient()
        client.force_authenticate(member)
        assert client.patch(f"/api/v1/catalog/products/{pid}/", {"title": group}, format="json").status_code == 200


# -- query parameters, pagination -------------------------------------------------------


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_list_endpoints_cap_limit_and_refuse_unusable_offsets_and_nul(operator_api, path):
    for limit in ("100000", str(2**64), str(10**40)):
        response = operator_api.get(path, {"limit": limit})
        assert response.status_code == 200, (limit, response.content[:200])
    assert operator_api.get(path, {"offset": str(10**30)}).status_code == 400
    for params in ({"tenant_id": "\x00"}, {"blueprint": "a\x00"}, {"reason": "\x00"}, {"\x00": "1"}):
        response = operator_api.get(path, params)
        assert response.status_code == 400, (params, response.status_code)
        assert "NUL" in response.json()["detail"]


def test_page_size_is_capped(operator_api):
    Product.objects.bulk_create([Product(tenant_id="t", title=f"P{i}", price_minor=1, available_qty=1)
                                 for i in range(1_100)])
    page = operator_api.get("/api/v1/catalog/products/", {"limit": 100_000}).json()
    assert page["count"] == 1_100 and len(page["results"]) == 1_000


def test_console_pages_refuse_nul_in_query_parameters(admin_client):
    for path in ("/dead-letters/?blueprint=%00", "/backfills/?x=%00", "/?q=a%00b"):
        assert admin_client.get(path).status_code == 400, path


# -- JSON bodies ------------------------------------------------------------------------


def _bodies(blueprint: str):
    for bad in UNSAFE_STRINGS:
        escaped = json.dumps(bad)  # "\u0000", "\ud800": valid JSON escapes a client can send
        yield "/api/v1/backfills/", f'{{"blueprint": {escaped}}}'
        yield "/api/v1/backfills/", (f'{{"blueprint": "{blueprint}", "selection": '
                                     f'{{"kind": "tenant", "tenant_id": {escaped}}}}}')
        yield "/api/v1/reconciliations/", f'{{"blueprint": {escaped}}}'
        yield "/api/v1/dead-letters/discard/", f'{{"all_matching": true, "filters": {{"blueprint": {escaped}}}}}'
        yield "/api/v1/catalog/products/", f'{{"tenant_id": "t", "title": "x", "price_minor": 1, "available_qty": 1, {escaped}: 1}}'


def test_nul_and_lone_surrogates_in_json_bodies_are_400(operator_api, products_blueprint):
    for path, body in _bodies(products_blueprint.name):
        response = post_json(operator_api, path, body)
        assert response.status_code == 400, (path, body[:80], response.status_code)
    assert not Backfill.objects.exists() and not Reconciliation.objects.exists()


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
@pytest.mark.parametrize("path", ["/api/v1/catalog/products/", "/api/v1/backfills/", "/api/v1/dead-letters/replay/"])
def test_deeply_nested_json_is_400(operator_api, path, depth):
    response = post_json(operator_api, path, "[" * depth + "]" * depth)
    assert response.status_code == 400 and "nested" in response.json()["detail"]
    nested = '{"a":' * depth + "1" + "}" * depth
    assert post_json(operator_api, path, nested).status_code == 400


# -- sizes and rates --------------------------------------------------------------------


def test_replay_and_discard_cap_the_number_of_ids(operator_api):
    for action in ("replay", "discard"):
        response = operator_api.post(f"/api/v1/dead-letters/{action}/", {"ids": list(range(1, 1_002))}, format="json")
        assert response.status_code == 400 and "At most 1000 ids" in str(response.json()["ids"])
        # A million ids is refused before parsing, as a body over the upload limit.
        response = operator_api.post(f"/api/v1/dead-letters/{action}/", {"ids": list(range(1, 1_000_002))}, format="json")
        assert response.status_code == 413
        assert operator_api.post(f"/api/v1/dead-letters/{action}/", {"ids": [2**64]}, format="json").status_code == 400


def test_console_dead_letter_actions_cap_the_number_of_ids(admin_client):
    admin_client.raise_request_exception = False  # as a real server answers Django's own field cap
    for count, status in ((1_001, 400), (1_000_001, 413)):
        response = admin_client.post("/dead-letters/action/", {"action": "discard", "scope": "selected",
                                                               "ids": [str(i) for i in range(1, count + 1)]})
        assert response.status_code == status and not DeadLetter.objects.exists()


@pytest.mark.parametrize("rate", [HUGE, 2**63, 0, -1])
def test_rows_per_second_is_bounded_everywhere(operator_api, admin_client, products_blueprint, eager_celery, rate):
    bp = products_blueprint.name
    assert operator_api.post("/api/v1/reconciliations/", {"blueprint": bp, "rows_per_second": rate},
                             format="json").status_code == 400
    assert operator_api.post("/api/v1/backfills/", {"blueprint": bp, "rows_per_second": rate},
                             format="json").status_code == 400
    report = Reconciliation.objects.create(blueprint=products_blueprint, index_name="x", status="running")
    assert operator_api.post(f"/api/v1/reconciliations/{report.pk}/throttle/", {"rows_per_second": rate},
                             format="json").status_code == 400
    backfill = Backfill.objects.create(blueprint=products_blueprint, target_index=products_blueprint.live_index(),
                                       selection={"kind": "all"}, status="running")
    assert operator_api.post(f"/api/v1/backfills/{backfill.pk}/throttle/", {"rows_per_second": rate},
                             format="json").status_code == 400
    # The console's forms: a form error, nothing stored.
    started = admin_client.post("/backfills/", {"blueprint": bp, "kind": "all", "rows_per_second": str(rate),
                                                "parallelism": "1"})
    assert started.status_code == 200 and b"rows_per_second" in started.content or b"Ensure this value" in started.content
    throttled = admin_client.post(f"/backfills/{backfill.pk}/throttle/", {"rows_per_second": str(rate)})
    assert throttled.status_code == 302
    recon = admin_client.post("/reconciliations/start/", {"blueprint": bp, "mode": "dry_run", "rows_per_second": str(rate)})
    assert recon.status_code == 400
    backfill.refresh_from_db()
    report.refresh_from_db()
    assert backfill.rows_per_second is None and report.rows_per_second is None
    assert Backfill.objects.count() == 1 and Reconciliation.objects.count() == 1
