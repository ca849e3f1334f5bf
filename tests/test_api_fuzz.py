"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis).

Every operation of /api/schema/ gets generated requests, as an operator with an API token,
through the WSGI app: no answer may be a 5xx, and documented answers must match the schema.
Also: an oversized body is refused with 413 and malformed JSON with 400, never a 500.
"""

import json

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item
            if method in {"get", "post", "put", "patch", "delete"}]


@pytest.fixture
def operator_token(django_user_model):
    from accounts import tokens

    user = django_user_model.objects.create_user("fuzz-operator", password="x")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["operate_pipeline", "view_auditevent", "write_products"]))
    return tokens.create(user, "fuzzing", days=1)[1]


@pytest.fixture
def real_objects(products_blueprint, django_user_model):
    """One object of each kind, so generated requests also reach real ones, not only 404s."""
    import audit
    from backfills import services
    from backfills.models import Cutover
    from catalog import services as catalog
    from indexing.models import DeadLetter, Reconciliation

    product = catalog.create_product(tenant_id="t", title="Fuzzed", price_minor=100, available_qty=1)
    letter = DeadLetter.objects.create(blueprint=products_blueprint, topic=products_blueprint.topic, partition=0,
                                       offset=1, raw_value=b"{}", reason="undecodable", error="e")
    backfill = services.schedule(products_blueprint, selection={"kind": "ids", "ids": [product.pk]}, start=False)
    cutover = Cutover.objects.create(blueprint=products_blueprint, from_index=products_blueprint.live_index())
    report = Reconciliation.objects.create(blueprint=products_blueprint,
                                           index_name=products_blueprint.live_index().name, dry_run=True)
    event = audit.record("fuzz", "fuzz.seed")
    return {"/api/v1/catalog/products/": product.pk, "/api/v1/dead-letters/": letter.pk,
            "/api/v1/backfills/": str(backfill.pk), "/api/v1/cutovers/": cutover.pk,
            "/api/v1/reconciliations/": report.pk, "/api/v1/audit/": event.pk,
            "blueprint": products_blueprint.name}


def _aim_at_real_objects(case, real):
    """Point the path at an existing object and the body at the real blueprint."""
    for prefix, pk in real.items():
        if case.operation.path.startswith(prefix) and case.path_parameters:
            case.path_parameters = {name: pk for name in case.path_parameters}
    if isinstance(case.body, dict) and "blueprint" in case.body:
        case.body = {**case.body, "blueprint": real["blueprint"]}


@pytest.fixture
def api_schema(operator_token, settings):
    # A burst of generated requests must not meet the throttle.
    settings.SEARCHSYNC_API_THROTTLE = {"user": "100000/minute", "anon": "100000/minute"}
    headers = {"Authorization": f"Token {operator_token}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(), headers=headers)
    return schema, headers


@pytest.mark.parametrize("method,path", _operations(), ids=lambda v: v)
def test_fuzz_operation(api_schema, real_objects, eager_celery, method, path):
    schema, headers = api_schema
    operation = schema[path][method]

    @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(), aim=st.booleans())
    def check(case, aim):
        if aim:
            _aim_at_real_objects(case, real_objects)
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


def test_oversized_body_is_413_and_malformed_json_is_400(operator_token, settings):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {operator_token}")
    big = json.dumps({"blueprint": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    response = api.post("/api/v1/backfills/", big, content_type="application/json")
    assert response.status_code == 413
    malformed = api.post("/api/v1/backfills/", '{"blueprint": ', content_type="application/json")
    assert malformed.status_code == 400 and "JSON parse error" in malformed.json()["detail"]
    nul = api.post("/api/v1/catalog/products/", {"tenant_id": "t", "title": "a\x00b", "price_minor": 1,
                                                 "available_qty": 1}, format="json")
    assert nul.status_code == 400
