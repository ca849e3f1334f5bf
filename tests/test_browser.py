"""The console in a real browser (Debian's Chromium driven by Playwright): pages render
without console errors, and an operator replays a dead letter through the confirm step."""

import pytest

from indexing.models import DeadLetter
from tests.conftest import SHOTS
from tests.helpers import login

pytestmark = pytest.mark.browser
def test_operator_sees_overview_and_replays_a_dead_letter(browser_page, live_server, products_blueprint,
                                                          django_user_model):
    from django.contrib.auth.models import Permission

    django_user_model.objects.create_user("operator", password="operator").user_permissions.add(
        Permission.objects.get(codename="operate_pipeline"))
    letter = DeadLetter.objects.create(
        blueprint=products_blueprint, topic=products_blueprint.topic, partition=0, offset=42, key=b"77",
        raw_value=b'{"event_type": "PRODUCT_UPSERT"}', reason="schema_invalid", error="'version' is a required property",
        entity_id="77")
    page = browser_page
    login(page, live_server)
    card = page.locator(f'[data-index="{products_blueprint.name}"]')
    card.wait_for()
    # No consumer runs in this test: the index must be red and say why.
    assert card.locator("[data-status]").get_attribute("data-status") == "red"
    assert card.locator("[data-consumers-live]").get_attribute("data-consumers-live") == "0"
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

    page.click("text=Dead letters")
    page.wait_for_selector("text='version' is a required property")
    page.check(f'input[name=ids][value="{letter.pk}"]')
    page.select_option("select[name=action]", "replay")
    page.click("text=Continue…")
    page.wait_for_selector("text=Replay 1 dead letter?")
    page.screenshot(path=str(SHOTS / "dead_letter_confirm.png"), full_page=True)
    letter.refresh_from_db()
    assert letter.status == "pending"
    page.click("text=Yes, replay 1")
    page.wait_for_selector("text=Replayed 1 dead letter(s)")
    page.screenshot(path=str(SHOTS / "dead_letter_replayed.png"), full_page=True)
    letter.refresh_from_db()
    assert letter.status == "replayed" and letter.resolved_by == "operator"
    assert page.console_errors == []


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_admin_takes_a_new_index_version_from_draft_to_live_with_a_second_approver(
        browser_page, live_server, products_blueprint, django_user_model, engine):
    from django.contrib.auth.models import Permission

    from backfills.models import Cutover
    from catalog import services
    from config.celery import app

    approve = Permission.objects.get(codename="approve_cutover")
    for name in ("admin1", "admin2"):
        django_user_model.objects.create_user(name, password=name).user_permissions.add(approve)
    services.create_products_bulk([dict(tenant_id="t", title=f"Desk {i}", price_minor=i, available_qty=1) for i in range(300)])
    old = products_blueprint.live_index().name
    app.conf.task_always_eager = True  # the build's backfill runs inside the request
    try:
        page = browser_page
        login(page, live_server, "admin1", "admin1")
        page.click("text=Cutovers")
        page.select_option("select[name=blueprint]", products_blueprint.name)
        page.click("text=Request cutover")
        page.wait_for_selector("text=Waiting for an admin other than admin1")
        assert page.locator("text=count parity").count() == 1
        page.screenshot(path=str(SHOTS / "cutover_awaiting_approval.png"), full_page=True)
        cutover = Cutover.objects.get()

        page.click("text=Log out")
        login(page, live_server, "admin2", "admin2")
        page.goto(f"{live_server.url}/cutovers/{cutover.pk}/")
        page.click("button:has-text('Approve')")
        page.wait_for_selector("text=Approved.")
        page.click("text=Swap aliases…")
        page.wait_for_selector("text=Swap the aliases?")
        page.screenshot(path=str(SHOTS / "cutover_confirm_swap.png"), full_page=True)
        page.click("text=Yes, swap now")
        page.wait_for_selector("text=Aliases swapped.")
        page.screenshot(path=str(SHOTS / "cutover_live.png"), full_page=True)
    finally:
        app.conf.task_always_eager = False
    cutover.refresh_from_db()
    assert cutover.state == "live" and cutover.approved_by.username == "admin2"
    assert set(engine.get_alias(products_blueprint.read_alias)) == {cutover.to_index.name} != {old}
    assert page.console_errors == []


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_blueprints_page_shows_revisions_and_a_coloured_diff(browser_page, live_server, products_blueprint,
                                                            django_user_model):
    import copy

    from indexing.control import revisions

    django_user_model.objects.create_superuser("admin1", password="admin1")
    definition = copy.deepcopy(products_blueprint.latest_revision().definition)
    definition["mappings"]["properties"]["brand"]["fields"] = {"text": {"type": "text"}}
    revisions.propose(products_blueprint, definition, by="alice", reason="search brands by word")
    page = browser_page
    login(page, live_server, "admin1", "admin1")
    page.click("text=Blueprints")
    card = page.locator(f"#bp-{products_blueprint.name}")
    assert card.locator("[data-state=serving]").count() == 1
    card.locator("select[name=a]").select_option("1")
    card.locator("select[name=b]").select_option("2")
    card.locator("text=Show diff").click()
    page.wait_for_selector(f"#diff-{products_blueprint.name} pre.diff .add")
    assert page.locator("pre.diff .add", has_text='"text"').count() >= 1
    page.screenshot(path=str(SHOTS / "blueprint_revisions_diff.png"), full_page=True)
    assert page.console_errors == []


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_console_swagger_ui_and_admin_work_under_the_content_security_policy(browser_page, live_server,
                                                                            django_user_model):
    from django.contrib.auth.models import Permission

    from config.csp import DEFAULT_POLICY

    django_user_model.objects.create_user("operator", password="operator").user_permissions.add(
        Permission.objects.get(codename="operate_pipeline"))
    for offset in (1, 2):
        DeadLetter.objects.create(topic="t", partition=0, offset=offset, raw_value=b"x", reason="undecodable", error="e")
    page = browser_page
    login(page, live_server)
    answer = page.goto(f"{live_server.url}/dead-letters/")
    assert answer.headers["content-security-policy"] == DEFAULT_POLICY and "script-src 'self'" in DEFAULT_POLICY
    # The select-all box works without an inline handler.
    page.check("input[data-select-all=ids]")
    assert page.locator("input[name=ids]:checked").count() == 2
    page.uncheck("input[data-select-all=ids]")
    assert page.locator("input[name=ids]:checked").count() == 0
    # The 403 page's back link, without a javascript: URL.
    page.goto(f"{live_server.url}/audit/")
    page.click("text=← Back")
    page.wait_for_url(f"{live_server.url}/dead-letters/")
    # The Swagger UI starts (its start-up script is a file) and renders the operations.
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock-tag")
    page.screenshot(path=str(SHOTS / "api_docs.png"), full_page=True)
    # The Django admin's login page (the operator is no staff member).
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_selector("#login-form")
    # No policy violation (Chromium reports "Refused to ..."); the 403 document and the admin's missing
    # favicon.ico are reported as failed loads, which are not errors of a page.
    errors = [e for e in page.console_errors if not e.startswith("Failed to load resource: the server responded")]
    assert errors == [], errors
