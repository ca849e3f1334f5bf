"""Roles: viewers only look, operators replay/backfill/reconcile, admins run cutovers,
anonymous users see the login page only — in the console and in the API alike."""

import pytest
from django.contrib.auth.models import Group

from indexing.permissions import ensure_roles
from rest_framework.test import APIClient

from indexing.models import DeadLetter

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def roles(django_user_model, products_blueprint):
    ensure_roles()
    viewer = django_user_model.objects.create_user("viewer", password="x")
    operator = django_user_model.objects.create_user("operator1", password="x")
    operator.groups.add(Group.objects.get(name="operators"))
    admin = django_user_model.objects.create_user("admin1", password="x")
    admin.groups.add(Group.objects.get(name="admins"))
    return {"viewer": viewer, "operator": operator, "admin": admin}


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


# (method, path, body) → which roles may do it
API_ACTIONS = [
    ("post", "/api/v1/dead-letters/discard/", {"all_matching": True}, {"operator", "admin"}),
    ("post", "/api/v1/backfills/", {"blueprint": "{bp}", "selection": {"kind": "ids", "ids": [1]}}, {"operator", "admin"}),
    ("post", "/api/v1/reconciliations/", {"blueprint": "{bp}", "dry_run": True}, {"operator", "admin"}),
    ("post", "/api/v1/cutovers/", {"blueprint": "{bp}"}, {"admin"}),
]


@pytest.mark.parametrize("method,path,body,allowed", API_ACTIONS, ids=[a[1] for a in API_ACTIONS])
def test_api_actions_per_role(roles, products_blueprint, method, path, body, allowed, settings):
    from config.celery import app

    app.conf.task_always_eager = True
    try:
        body = {k: (v.format(bp=products_blueprint.name) if isinstance(v, str) else v) for k, v in body.items()}
        for role, user in roles.items():
            response = getattr(api(user), method)(path, body, format="json")
            if role in allowed:
                assert response.status_code in (200, 201, 202), (role, path, response.content)
            else:
                assert response.status_code == 403, (role, path, response.status_code)
            # Everybody logged in may read.
            assert api(user).get(path.split("discard/")[0]).status_code == 200
    finally:
        app.conf.task_always_eager = False
    assert APIClient().get("/api/v1/dead-letters/").status_code == 401


def test_console_actions_per_role(roles, products_blueprint, client):
    letter = DeadLetter.objects.create(topic="t", partition=0, offset=1, raw_value=b"x", reason="undecodable", error="e")
    expectations = [
        ("/dead-letters/action/", {"action": "discard", "scope": "selected", "ids": [letter.pk]}, {"operator", "admin"}),
        ("/backfills/", {"blueprint": products_blueprint.name, "kind": "ids", "ids": "1", "parallelism": "1"},
         {"operator", "admin"}),
        ("/cutovers/", {"blueprint": products_blueprint.name}, {"admin"}),
    ]
    for role, user in roles.items():
        client.force_login(user)
        assert client.get("/").status_code == 200
        for path, body, allowed in expectations:
            response = client.post(path, body)
            if role in allowed:
                assert response.status_code in (200, 302), (role, path, response.status_code)
            else:
                assert response.status_code == 403, (role, path, response.status_code)
                assert "Not allowed" in response.content.decode()
    client.logout()
    for path in ("/", "/dead-letters/", "/backfills/", "/cutovers/", "/reconciliations/"):
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response.url, path
    assert client.get("/api/docs/").status_code in (401, 403)
    assert client.get("/api/schema/").status_code in (401, 403)
