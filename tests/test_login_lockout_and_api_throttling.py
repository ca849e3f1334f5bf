"""Login lockout, API throttling and hashed API tokens made on the console's Tokens page."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import TokenLabel
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def operator(django_user_model):
    user = django_user_model.objects.create_user("op", password="right-password-1")
    user.user_permissions.add(Permission.objects.get(codename="operate_pipeline"))
    return user


def login(client, password):
    return client.post("/accounts/login/", {"username": "op", "password": password})


def test_locked_out_login_stays_locked_even_with_the_right_password(operator, client, settings, django_user_model):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        page = login(client, "wrong")
        assert page.status_code == 200 and "didn't match" in page.content.decode()
    locked = login(client, "wrong")
    assert locked.status_code == 429 and "Login locked" in locked.content.decode()
    again = login(client, "right-password-1")
    assert again.status_code == 429 and "even with the right password" in again.content.decode()
    assert "locked for 15 minutes" in again.content.decode() and again["Retry-After"] == "900"
    assert client.get("/").status_code == 302  # not logged in
    # One row per username and address in a window, however many failures and lockouts (audit.bounded).
    failures = AuditEvent.objects.filter(action="login.failed", actor="op")
    assert failures.count() == 1 and failures.first().ip_address == "127.0.0.1"
    assert AuditEvent.objects.filter(action="login.locked_out", actor="op", outcome="refused").count() == 1

    # An admin lifts the lockout in the Django admin; the user logs in again.
    admin = django_user_model.objects.create_superuser("root", password="x" * 20)
    admin_client = client.__class__()
    admin_client.force_login(admin)
    attempt = AccessAttempt.objects.get(username="op")
    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "op" in listing.content.decode()
    assert admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}).status_code == 302
    assert AuditEvent.objects.filter(action="login.lockout_lifted", actor="root", target="user:op").exists()
    assert login(client, "right-password-1").status_code == 302
    assert AuditEvent.objects.filter(action="login.success", actor="op").exists()


def test_an_address_failing_over_many_usernames_is_blocked_and_only_that_address(operator, client, settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.SEARCHSYNC_LOGIN_ADDRESS_FAILURE_LIMIT = 6
    attacker, elsewhere = "203.0.113.9", "198.51.100.7"
    # One failure each for six usernames: no pair comes near its own limit of 5.
    answers = [client.post("/accounts/login/", {"username": name, "password": "wrong"}, REMOTE_ADDR=attacker)
               for name in ["op", "admin", "root", "alice", "bob", "carol"]]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    blocked = answers[-1].content.decode()
    assert "from this address, whatever the username (6 attempts)" in blocked and answers[-1]["Retry-After"] == "900"
    # The block covers the right password and any username from that address...
    assert client.post("/accounts/login/", {"username": "op", "password": "right-password-1"},
                       REMOTE_ADDR=attacker).status_code == 429
    # ...and nothing else: the user logs in from another address.
    assert client.__class__().post("/accounts/login/", {"username": "op", "password": "right-password-1"},
                                   REMOTE_ADDR=elsewhere).status_code == 302
    assert AuditEvent.objects.filter(action="login.locked_out", ip_address=attacker, outcome="refused").exists()


def test_api_burst_over_the_rate_gets_429_with_retry_after(operator_api, settings):
    settings.SEARCHSYNC_API_THROTTLE = {"user": "3/minute", "anon": "2/minute"}
    codes = [operator_api.get("/api/v1/backfills/").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    over = operator_api.get("/api/v1/backfills/")
    assert over.status_code == 429
    assert 0 < int(over["Retry-After"]) <= 60


def test_calls_without_valid_credentials_count_per_address_and_get_429(operator_api, settings):
    settings.SEARCHSYNC_API_THROTTLE = {"user": "1000/minute", "anon": "3/minute"}
    anonymous, bad_token = APIClient(REMOTE_ADDR="203.0.113.9"), APIClient(REMOTE_ADDR="203.0.113.9")
    bad_token.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)
    codes = [client.get("/api/v1/").status_code for client in (anonymous, bad_token, anonymous)]
    assert codes == [401, 401, 401]
    for client in (anonymous, bad_token):
        over = client.get("/api/v1/")
        assert over.status_code == 429 and 0 < int(over["Retry-After"]) <= 60
    # Per address: another address still gets its 401, and a valid token its own user's budget.
    assert APIClient(REMOTE_ADDR="198.51.100.7").get("/api/v1/").status_code == 401
    assert operator_api.get("/api/v1/", REMOTE_ADDR="203.0.113.9").status_code == 200


def _new_token(client, name="nightly script", days="7"):
    page = client.post("/tokens/", {"name": name, "days": days})
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    return re.search(r'<pre id="new-token">([^<]+)</pre>', page.content.decode()).group(1)


def test_console_token_schedules_a_backfill_then_revoked_or_expired_gets_401(operator, client, products_blueprint,
                                                                            eager_celery):
    client.force_login(operator)
    secret = _new_token(client)
    # Only a digest is stored: the secret appears in no column.
    token = AuthToken.objects.get(user=operator)
    assert secret not in (token.digest, token.token_key) and len(token.digest) == 128
    assert timedelta(days=6) < token.expiry - timezone.now() <= timedelta(days=7)
    # The secret is shown once: the page does not show it again.
    assert secret not in client.get("/tokens/").content.decode()

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    made = api.post("/api/v1/backfills/", {"blueprint": products_blueprint.name,
                                           "selection": {"kind": "ids", "ids": [1, 2]}}, format="json")
    assert made.status_code == 201, made.content
    assert TokenLabel.objects.get(token=token).last_used_at is not None
    started = AuditEvent.objects.get(action="backfill.start")
    assert started.actor == "op" and started.details["selection"] == {"kind": "ids", "ids": [1, 2]}
    assert "nightly script" in client.get("/tokens/").content.decode()

    assert client.post(f"/tokens/{token.token_key}/revoke/").status_code == 302
    assert api.get("/api/v1/backfills/").status_code == 401
    assert AuditEvent.objects.filter(action="token.create", actor="op", details__name="nightly script").exists()
    assert AuditEvent.objects.filter(action="token.revoke", actor="op").exists()

    # An expired token is refused the same way.
    expiring = _new_token(client, "short-lived", "1")
    AuthToken.objects.filter(user=operator).update(expiry=timezone.now() - timedelta(seconds=1))
    api.credentials(HTTP_AUTHORIZATION=f"Token {expiring}")
    refused = api.get("/api/v1/backfills/")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token"


def test_tokens_of_other_users_cannot_be_revoked(operator, client, django_user_model):
    other = django_user_model.objects.create_user("other", password="x")
    client.force_login(other)
    _new_token(client, "theirs")
    key = AuthToken.objects.get(user=other).token_key
    client.force_login(operator)
    client.post(f"/tokens/{key}/revoke/")
    assert AuthToken.objects.filter(user=other).exists()


def test_answers_carry_a_content_security_policy_that_settings_can_replace(client, operator_api, settings):
    from config.csp import DEFAULT_POLICY

    for answer in (client.get("/accounts/login/"), operator_api.get("/api/v1/"), APIClient().get("/api/v1/")):
        assert answer["Content-Security-Policy"] == DEFAULT_POLICY
    assert "script-src 'self';" in DEFAULT_POLICY and "frame-ancestors 'none'" in DEFAULT_POLICY
    settings.SEARCHSYNC_CONTENT_SECURITY_POLICY = "default-src 'self'; report-uri /csp"
    assert client.get("/accounts/login/")["Content-Security-Policy"] == "default-src 'self'; report-uri /csp"
    settings.SEARCHSYNC_CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in client.get("/accounts/login/")


def test_metrics_answer_only_the_bearer_token_once_one_is_set(client, django_user_model, settings):
    assert client.get("/metrics").status_code == 200  # open by default: Prometheus scrapes without a login
    settings.SEARCHSYNC_METRICS_TOKEN = "scrape-" + "x" * 40
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": f"Token {'scrape-' + 'x' * 40}"},
                    {"HTTP_AUTHORIZATION": "Bearer"}):
        refused = client.get("/metrics", **headers)
        assert refused.status_code == 401 and refused["WWW-Authenticate"] == 'Bearer realm="metrics"', headers
        assert b"searchsync_" not in refused.content
    # A console login is no substitute for the token.
    client.force_login(django_user_model.objects.create_user("viewer", password="x"))
    assert client.get("/metrics").status_code == 401
    scraped = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {'scrape-' + 'x' * 40}")
    assert scraped.status_code == 200 and b"searchsync_outbox_unpublished" in scraped.content
