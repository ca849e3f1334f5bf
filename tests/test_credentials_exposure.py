"""One admin must not be able to obtain another user's credentials: no page the admin can reach
(console, API, schema, Django admin) shows another user's API token or password hash, and demo
admins are not superusers."""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from accounts import tokens

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

LINK = re.compile(r'(?:href|src|hx-get|hx-post|action)="([^"#]*)"')
MAX_PAGES = 400


@pytest.fixture
def demo_users(products_blueprint):
    from catalog.permissions import grant_product_writes
    from indexing.management.commands.bootstrap import create_demo_users
    from indexing.permissions import ensure_roles

    ensure_roles()
    grant_product_writes()
    User = get_user_model()
    # An installation bootstrapped before the rule: the demo admin was a superuser.
    User.objects.create_user("admin", password="admin", is_superuser=True, is_staff=True)
    create_demo_users()
    return {u.username: u for u in User.objects.all()}


def _links(response, base: str) -> list[str]:
    content_type = response.get("Content-Type", "")
    body = response.content.decode("utf-8", "replace")
    found = []
    if "html" in content_type:
        found = [urljoin(base, m) for m in LINK.findall(body)]
    elif "json" in content_type:
        found = re.findall(r'"(http://testserver/[^"]*)"', body)
    local = []
    for url in found:
        parts = urlsplit(url.replace("&amp;", "&"))
        if parts.netloc not in ("", "testserver") or parts.path.startswith("/static/"):
            continue
        local.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return local


def crawl(client, start: list[str]) -> dict[str, bytes]:
    seen: dict[str, bytes] = {}
    queue = deque(start)
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen or "logout" in url:
            continue
        response = client.get(url)
        seen[url] = response.content
        if response.status_code in (301, 302) and response.get("Location"):
            queue.append(_links_location(response["Location"]))
        elif response.status_code == 200:
            queue.extend(u for u in _links(response, url) if u not in seen)
    return seen


def _links_location(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def login(client, name: str) -> bool:
    # The lockout backend counts attempts per address, so authentication needs a request.
    return client.login(request=RequestFactory().post("/accounts/login/"), username=name, password=name)


def test_demo_admins_are_not_superusers_and_demo_passwords_work(demo_users, client):
    for name in ("admin", "admin2", "operator"):
        user = demo_users[name]
        assert not user.is_superuser, name
        assert login(client, name), name
    assert demo_users["admin"].has_perm("backfills.approve_cutover")
    assert demo_users["admin"].has_perm("catalog.write_products")


def test_an_admin_cannot_read_another_users_token_or_password_hash(demo_users, client):
    secrets = {}
    for name in ("admin2", "operator"):
        _, token = tokens.create(demo_users[name], "ci", days=7)
        password = demo_users[name].password  # algorithm$iterations$salt$hash
        _algorithm, _iterations, salt, digest = password.split("$")
        secrets[name] = {"token": token, "password": password, "salt": salt, "hash": digest}
    _, own_token = tokens.create(demo_users["admin"], "mine", days=7)
    assert login(client, "admin")

    User = get_user_model()
    admin2 = demo_users["admin2"].pk
    start = ["/", "/admin/", "/api/v1/", "/api/v1/catalog/", "/api/schema/?format=json", "/api/docs/", "/healthz",
             "/metrics", "/admin/knox/authtoken/", "/tokens/", f"/admin/auth/user/{admin2}/change/",
             f"/admin/auth/user/{admin2}/password/", "/admin/auth/user/", "/admin/auth/group/"]
    pages = crawl(client, start)
    assert len(pages) > 20, sorted(pages)  # the crawl really walked the console and the admin
    assert any(p.startswith("/backfills") for p in pages) and any(p.startswith("/admin/") for p in pages)
    for url, body in pages.items():
        for name, secret in secrets.items():
            for kind, value in secret.items():
                assert value.encode() not in body, f"{url} shows {name}'s {kind}"
    # The user pages are not for console admins.
    assert client.get(f"/admin/auth/user/{admin2}/change/").status_code in (302, 403, 404)
    assert User.objects.get(pk=admin2).password == secrets["admin2"]["password"]
    assert own_token  # an own token is not a leak; others' are


def test_tokens_are_stored_as_digests_only(demo_users):
    from knox.models import AuthToken

    token, secret = tokens.create(demo_users["operator"], "ci", days=7)
    stored = AuthToken.objects.filter(pk=token.pk).values().get()
    # Only the first characters (to tell tokens apart) and a digest are kept: no column holds the secret.
    assert secret.startswith(stored["token_key"]) and len(stored["token_key"]) < len(secret)
    assert all(secret not in str(value) for value in stored.values())
