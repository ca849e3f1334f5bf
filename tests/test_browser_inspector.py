"""The document inspector in a real browser (Chromium via Playwright): a document in each state an
operator meets, found from the overview's search box, and a re-index through the confirm step."""

import pytest
from django.db import transaction
from django.utils import timezone

from catalog import services
from indexing.models import DeadLetter, OutboxEvent
from indexing.observability.inspector import inspect
from indexing.outbox.emit import emit
from tests.conftest import SHOTS
from tests.helpers import login, pipeline, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "replica"])]


def product(title):
    return services.create_product(tenant_id="acme", title=title, price_minor=450, available_qty=3)


def states(blueprint, ids):
    return {name: inspect(blueprint, str(pk)).state for name, pk in ids.items()}


def test_operator_follows_documents_in_each_state_and_reindexes_one(browser_page, live_server, products_blueprint,
                                                                   django_user_model):
    from django.contrib.auth.models import Permission

    django_user_model.objects.create_user("operator", password="operator").user_permissions.add(
        Permission.objects.get(codename="operate_pipeline"))
    in_sync, deleted, lost, poisoned = (product(t) for t in ("Chai", "Matcha", "Rooibos", "Sencha"))
    # Lost on its way: marked published, never sent. Poisoned: its event replaced by one the schema refuses.
    OutboxEvent.objects.filter(aggregate_id=str(lost.pk)).update(published_at=timezone.now())
    version = inspect(products_blueprint, str(poisoned.pk)).database.version
    OutboxEvent.objects.filter(aggregate_id=str(poisoned.pk)).delete()
    with transaction.atomic():
        emit(aggregate_type=products_blueprint.aggregate_type, aggregate_id=poisoned.pk, version=version,
             payload={"title": 42}, tenant_id="acme")
    services.delete_product(deleted.pk)
    ids = {"in_sync": in_sync.pk, "deleted": deleted.pk, "missing": lost.pk, "dead_lettered": poisoned.pk}
    with pipeline(products_blueprint):
        wait_until(lambda: states(products_blueprint, ids) == {k: k for k in ids}, timeout=60,
                   message="documents in their states")
    waiting = product("Genmaicha")  # after the relay stopped: stays in the outbox
    ids["waiting_in_outbox"] = waiting.pk

    page = browser_page
    login(page, live_server)
    for state, pk in ids.items():
        page.goto(f"{live_server.url}/")
        page.select_option("select[name=blueprint]", products_blueprint.name)
        page.fill("input[name=id]", str(pk))
        page.click("text=Inspect document")
        page.wait_for_url(f"{live_server.url}/documents/{products_blueprint.name}/{pk}/")
        assert page.locator(".verdict").get_attribute("data-state") == state
        page.screenshot(path=str(SHOTS / f"document_{state}.png"), full_page=True)
    page.goto(f"{live_server.url}/documents/{products_blueprint.name}/{poisoned.pk}/")
    letter = DeadLetter.objects.get(entity_id=str(poisoned.pk))
    page.click(f"[data-stage=dead_letters] >> text=#{letter.pk}")
    page.wait_for_url(f"{live_server.url}/dead-letters/{letter.pk}/")

    # The lost document: re-indexed through the confirm step, then indexed by the pipeline.
    page.goto(f"{live_server.url}/documents/{products_blueprint.name}/{lost.pk}/")
    page.click("text=Re-index this document…")
    page.wait_for_selector(f"text=Re-index {products_blueprint.name} {lost.pk}?")
    page.click("text=Yes, re-index")
    page.wait_for_selector("text=Re-indexed: upsert event at version")
    assert page.locator("[data-audit-action='document.reindex']").count() == 1
    with pipeline(products_blueprint):
        wait_until(lambda: inspect(products_blueprint, str(lost.pk)).state == "in_sync", timeout=60,
                   message="re-indexed document in sync")
    page.reload()
    assert page.locator(".verdict").get_attribute("data-state") == "in_sync"
    page.screenshot(path=str(SHOTS / "document_reindexed.png"), full_page=True)
    assert page.console_errors == []


def test_read_only_users_see_no_reindex_button(browser_page, live_server, products_blueprint, django_user_model):
    django_user_model.objects.create_user("viewer", password="viewer-password-1")
    p = product("Hojicha")
    page = browser_page
    login(page, live_server, "viewer", "viewer-password-1")
    page.goto(f"{live_server.url}/blueprints/")
    page.locator(f"#bp-{products_blueprint.name} input[name=id]").fill(str(p.pk))
    page.locator(f"#bp-{products_blueprint.name} >> text=Inspect document").click()
    page.wait_for_url(f"{live_server.url}/documents/{products_blueprint.name}/{p.pk}/")
    assert page.locator(".verdict").get_attribute("data-state") == "waiting_in_outbox"
    assert page.locator("text=Re-index this document…").count() == 0
    page.goto(f"{live_server.url}/documents/{products_blueprint.name}/abc/")
    assert "is not a valid" in page.locator("[data-inspector-error]").inner_text()
    assert [e for e in page.console_errors if "400" not in e] == []
