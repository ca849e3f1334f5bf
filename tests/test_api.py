"""The REST API: catalog writes with 400s and field errors, dead letters, OpenAPI schema."""

import pytest
from rest_framework.test import APIClient

from catalog.models import Product
from indexing.models import DeadLetter, OutboxEvent



@pytest.mark.django_db
def test_anonymous_requests_are_refused():
    assert APIClient().get("/api/v1/catalog/products/").status_code == 401


@pytest.mark.django_db
def test_create_update_delete_product_write_outbox_events(operator_api):
    created = operator_api.post("/api/v1/catalog/products/", {"tenant_id": "t1", "title": "Desk", "price_minor": 1999,
                                                     "available_qty": 3}, format="json")
    assert created.status_code == 201, created.content
    pid = created.json()["id"]
    assert created.json()["version"] == 1
    updated = operator_api.patch(f"/api/v1/catalog/products/{pid}/", {"price_minor": 2499}, format="json")
    assert updated.status_code == 200 and updated.json()["version"] == 2
    assert operator_api.delete(f"/api/v1/catalog/products/{pid}/").status_code == 204
    events = list(OutboxEvent.objects.order_by("version").values_list("event_type", "version", "aggregate_id"))
    # Event versions are change stamps (one sequence for every catalog write): strictly increasing.
    assert [(t, a) for t, _, a in events] == [("PRODUCT_UPSERT", str(pid)), ("PRODUCT_UPSERT", str(pid)),
                                              ("PRODUCT_DELETE", str(pid))]
    assert events[0][1] < events[1][1] < events[2][1]
    assert operator_api.get(f"/api/v1/catalog/products/{pid}/").status_code == 404


@pytest.mark.django_db
def test_invalid_product_is_a_400_with_field_errors_and_writes_nothing(operator_api):
    response = operator_api.post("/api/v1/catalog/products/", {"tenant_id": "t1", "title": "", "price_minor": -5,
                                                      "available_qty": "many"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"title", "price_minor", "available_qty"}
    assert not Product.objects.exists() and not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_dead_letter_list_filters_detail_and_discard(operator_api):
    from indexing.models import IndexBlueprint

    bp = IndexBlueprint.objects.create(name="bp", aggregate_type="product", read_alias="bp_r", write_alias="bp_w",
                                       document_builder="products", source_model="catalog.Product")
    a = DeadLetter.objects.create(blueprint=bp, topic="t", partition=0, offset=1, raw_value=b"\xff{bad",
                                  reason="undecodable", error="not JSON")
    DeadLetter.objects.create(blueprint=bp, topic="t", partition=0, offset=2, raw_value=b"{}", reason="schema_invalid",
                              error="missing")
    listed = operator_api.get("/api/v1/dead-letters/", {"reason": "undecodable"}).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == a.pk
    detail = operator_api.get(f"/api/v1/dead-letters/{a.pk}/").json()
    assert detail["raw_base64"] == "/3tiYWQ=" and detail["blueprint"] == "bp"
    bad_filter = operator_api.get("/api/v1/dead-letters/", {"reason": "nope", "since": "yesterday"})
    assert bad_filter.status_code == 400 and set(bad_filter.json()) == {"reason", "since"}
    assert operator_api.post("/api/v1/dead-letters/discard/", {}, format="json").status_code == 400
    discarded = operator_api.post("/api/v1/dead-letters/discard/", {"all_matching": True, "filters": {"reason": "schema_invalid"}},
                         format="json")
    assert discarded.json() == {"discarded": 1}
    assert operator_api.post(f"/api/v1/dead-letters/{a.pk}/discard/").json() == {"discarded": 1}
    assert operator_api.post(f"/api/v1/dead-letters/{a.pk}/discard/").status_code == 400
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"discarded"}


@pytest.mark.django_db
def test_openapi_schema_and_offline_docs(operator_api, admin_client):
    schema = operator_api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/catalog/products/" in paths and "/api/v1/dead-letters/replay/" in paths
    docs = admin_client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()
