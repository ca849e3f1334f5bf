"""The OpenAPI schema tells the truth: nullable fields are nullable, error answers are documented,
and every string bound the schema states for products is what the API enforces."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(operator_api):
    response = operator_api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def test_user_references_are_nullable(schema):
    components = schema["components"]["schemas"]
    for component, field in [("Cutover", "approved_by"), ("Cutover", "requested_by"), ("Backfill", "requested_by"),
                             ("Reconciliation", "requested_by")]:
        assert components[component]["properties"][field].get("nullable") is True, (component, field)


def test_error_answers_are_documented(schema):
    paths = schema["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "401" in codes, (method, path)
            if method in ("post", "put", "patch"):
                assert {"400", "403"} <= codes, (method, path)
            if "{id}" in path:
                assert "404" in codes, (method, path)
    for path in ("/api/v1/backfills/{id}/pause/", "/api/v1/cutovers/{id}/approve/", "/api/v1/cutovers/",
                 "/api/v1/backfills/"):
        assert "409" in paths[path]["post"]["responses"], path
    assert "503" in paths["/api/v1/dead-letters/replay/"]["post"]["responses"]
    limit = next(p for p in paths["/api/v1/catalog/products/"]["get"]["parameters"] if p["name"] == "limit")
    assert "1000" in limit["description"]


def test_product_string_rules_in_the_schema_are_enforced(schema, operator_api):
    product = schema["components"]["schemas"]["Product"]["properties"]
    base = {"tenant_id": "t", "title": "Desk", "price_minor": 1, "available_qty": 1}
    for name in ("tenant_id", "title", "description", "brand_name"):
        rules = product[name]
        assert rules["type"] == "string" and "maxLength" in rules and "\\u0000" in rules["pattern"], name
        cases = [("x" * (rules["maxLength"] + 1), 400), ("x" * rules["maxLength"], 201), ("a\u0000", 400), (0, 400)]
        if rules.get("minLength"):
            cases.append(("", 400))
        for value, expected in cases:
            response = operator_api.post("/api/v1/catalog/products/", {**base, name: value}, format="json")
            assert response.status_code == expected, (name, str(value)[:20], response.status_code)
    assert product["title"]["minLength"] == 1
    assert operator_api.post("/api/v1/catalog/products/", {**base, "title": "   "}, format="json").status_code == 400


@pytest.mark.parametrize("params", [{"offset": "null"}, {"offset": "-1"}, {"limit": "null"}, {"limit": "0"},
                                    {"limit": "1.5"}])
def test_pagination_parameters_that_are_not_whole_numbers_are_400(operator_api, params):
    response = operator_api.get("/api/v1/catalog/products/", params)
    assert response.status_code == 400 and set(response.json()) == set(params)
