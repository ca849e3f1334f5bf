"""Console pages over HTTP: login wall, health, overview, dead-letter flow with its confirm step."""

import pytest
from django.test import override_settings

from indexing.engines import get_engine
from indexing.models import DeadLetter


@pytest.mark.django_db
def test_anonymous_users_only_see_the_login_page(client):
    assert client.get("/").status_code == 302
    assert client.get("/").url.startswith("/accounts/login/")
    assert client.get("/dead-letters/").status_code == 302
    assert client.get("/accounts/login/").status_code == 200


@pytest.fixture(autouse=True)
def fresh_health_checks():
    from dashboard.dependencies import forget_checks

    forget_checks()
    yield
    forget_checks()


@pytest.mark.django_db
def test_healthz_is_public_and_reports_every_dependency_to_logged_in_users(client, admin_client):
    anonymous = client.get("/healthz")
    assert set(anonymous.json()) == {"status"}  # no versions, cluster ids or worker names for strangers
    response = admin_client.get("/healthz")
    assert response.status_code == anonymous.status_code
    body = response.json()
    assert set(body["dependencies"]) == {"postgres", "redis", "kafka", "search", "celery"}
    for name in ("postgres", "redis", "kafka", "search"):
        assert body["dependencies"][name]["ok"], body["dependencies"][name]
    assert body["dependencies"]["postgres"]["detail"] == "wal_level=logical"
    assert "consumers" in body["pipeline"]
    # Celery workers are not started by the test suite, so the whole is degraded: 503.
    healthy = body["dependencies"]["celery"]["ok"] and body["pipeline"]["ok"]
    assert response.status_code == (200 if healthy else 503)


def test_healthz_is_degraded_while_an_enabled_blueprint_has_no_consumer(admin_client, products_blueprint):
    body = admin_client.get("/healthz")
    assert body.status_code == 503
    assert body.json()["status"] == "degraded"
    assert body.json()["pipeline"]["consumers"][products_blueprint.name] == 0
    assert body.json()["pipeline"]["ok"] is False


def test_overview_shows_a_red_no_consumer_state(admin_client, products_blueprint):
    html = admin_client.get("/partials/indices/", HTTP_HX_REQUEST="true").content.decode()
    card = html[html.index(f'data-index="{products_blueprint.name}"'):]
    assert 'data-status="red"' in card[:400]
    assert 'data-consumers-live="0"' in card and '<span class="status red">no consumer</span>' in card


@pytest.mark.django_db
def test_healthz_is_503_when_the_search_node_is_unreachable(client):
    get_engine.cache_clear()
    try:
        with override_settings(SEARCH_URL="http://127.0.0.1:1"):
            response = client.get("/healthz")
    finally:
        get_engine.cache_clear()
    assert response.status_code == 503
    assert response.json() == {"status": "degraded"}


@pytest.mark.django_db
def test_healthz_reuses_a_recent_check(client, admin_client):
    import time

    from dashboard import dependencies

    first = admin_client.get("/healthz").json()["dependencies"]
    started = time.monotonic()
    for _ in range(30):
        client.get("/healthz")
    # Each full check costs about a second (Kafka admin client, Celery ping); thirty cached answers do not.
    assert time.monotonic() - started < 3
    assert admin_client.get("/healthz").json()["dependencies"] == first
    dependencies.forget_checks()
    assert dependencies.recent_checks() is not dependencies.recent_checks(max_age_s=0)


def test_overview_shows_each_index_with_status(admin_client, products_blueprint):
    page = admin_client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert products_blueprint.name in html and products_blueprint.read_alias in html
    assert 'data-status="' in html and "hx-get" in html
    partial = admin_client.get("/partials/indices/", HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and "<html" not in partial.content.decode()


@pytest.mark.django_db
def test_dead_letter_discard_needs_confirmation(admin_client):
    letter = DeadLetter.objects.create(topic="t", partition=0, offset=5, raw_value=b'{"a": 1}', reason="schema_invalid",
                                       error="payload: 'title' is a required property")
    listing = admin_client.get("/dead-letters/")
    assert "required property" in listing.content.decode()
    detail = admin_client.get(f"/dead-letters/{letter.pk}/")
    assert "&quot;a&quot;: 1" in detail.content.decode()
    first = admin_client.post("/dead-letters/action/", {"action": "discard", "scope": "selected", "ids": [letter.pk]})
    assert first.status_code == 200 and "Yes, discard 1" in first.content.decode()
    letter.refresh_from_db()
    assert letter.status == "pending"  # nothing happens before the confirm
    admin_client.post("/dead-letters/action/", {"action": "discard", "scope": "selected", "ids": [letter.pk],
                                                "confirmed": "on"})
    letter.refresh_from_db()
    assert letter.status == "discarded" and letter.resolved_by == "admin"


@pytest.mark.django_db
def test_dead_letter_action_without_selection_is_a_message_not_a_500(admin_client):
    response = admin_client.post("/dead-letters/action/", {"action": "replay", "scope": "selected"}, follow=True)
    assert response.status_code == 200
    assert "Select at least one dead letter" in response.content.decode()


@pytest.mark.django_db
def test_unmapped_fields_are_listed_and_acknowledged(admin_client):
    from indexing.models import UnmappedField

    field = UnmappedField.objects.create(index_name="products_v1", field="colour", count=7, sample="red")
    page = admin_client.get("/unmapped-fields/").content.decode()
    assert 'data-field="colour"' in page and ">7<" in page
    admin_client.post(f"/unmapped-fields/{field.pk}/acknowledge/")
    field.refresh_from_db()
    assert field.acknowledged
    assert 'data-field="colour"' not in admin_client.get("/unmapped-fields/").content.decode()
