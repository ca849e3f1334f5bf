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
    user.user_permissions.add(*Permission.objects.filter(codename__in=["operate_pipeline", "view_auditevent"]))
    return tokens.create(user, "fuzzing", days=1)[1]


@pytest.fixture
def api_schema(operator_token, settings):
    # A burst of generated requests must not meet the throttle.
    settings.SEARCHSYNC_API_THROTTLE = {"user": "100000/minute", "anon": "100000/minute"}
    headers = {"Authorization": f"Token {operator_token}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(), headers=headers)
    return schema, headers


@pytest.mark.parametrize("method,path", _operations(), ids=lambda v: v)
def test_fuzz_operation(api_schema, eager_celery, method, path):
    schema, headers = api_schema
    operation = schema[path][method]

    @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case):
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
