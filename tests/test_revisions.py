"""Invariant 14: a blueprint changes only through a new immutable revision, validated against the
real engine before it is accepted and served through a cutover; who, when and why are recorded."""

import copy

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from backfills import cutover as cutovers
from backfills.models import Cutover
from catalog import services as catalog
from indexing.control import revisions
from indexing.models import BlueprintRevision, ImmutableRevision
from tests.helpers import pipeline, wait_converged

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


def scratch_indices(engine) -> list[str]:
    rows = engine.client.cat.indices(index=f"{revisions.SCRATCH_PREFIX}*", format="json")
    return [r["index"] for r in rows]


def seed(n):
    catalog.create_products_bulk([dict(tenant_id="t", title=f"Chair {i}", brand_name="Acme Corp", price_minor=i,
                                       available_qty=1) for i in range(n)])


def changed(blueprint, change) -> dict:
    definition = copy.deepcopy(blueprint.latest_revision().definition)
    change(definition)
    return definition


def test_first_revision_records_the_files_and_is_immutable(products_blueprint):
    revision = products_blueprint.latest_revision()
    assert revision.number == 1 and len(revision.content_hash) == 64
    assert revision.created_by and revision.reason
    assert products_blueprint.live_index().revision == revision == products_blueprint.serving_revision
    assert revision.definition["golden_queries"]  # from catalog/search/products_blueprint.json
    revision.reason = "rewritten history"
    with pytest.raises(ImmutableRevision):
        revision.save()
    with pytest.raises(ImmutableRevision):
        BlueprintRevision.objects.filter(pk=revision.pk).update(reason="rewritten")
    with pytest.raises(ImmutableRevision):
        revision.delete()
    with pytest.raises(revisions.NothingToPropose):
        revisions.propose(products_blueprint, revision.definition, by="x", reason="same again")


@pytest.mark.parametrize("change, kind, cause", [
    (lambda d: d["mappings"]["properties"]["title"].update(analyzer="no_such_analyzer"),
     "mapper_parsing_exception", "analyzer no_such_analyzer"),
    (lambda d: d["settings"]["analysis"]["analyzer"]["autocomplete_analyzer"].update(tokenizer="no_such_tokenizer"),
     "illegal_argument_exception", "tokenizer no_such_tokenizer"),
    # The mapping is valid on its own but conflicts with the documents the builder makes from real rows.
    (lambda d: d["mappings"]["properties"].update(price_minor={"type": "date", "format": "strict_date"}),
     "mapper_parsing_exception", "field price_minor"),
])
def test_a_broken_revision_is_rejected_with_its_cause_and_leaves_nothing_behind(products_blueprint, engine, change,
                                                                                kind, cause):
    seed(5)
    before = list(products_blueprint.revisions.all())
    with pytest.raises(revisions.RevisionRejected) as rejected:
        revisions.propose(products_blueprint, changed(products_blueprint, change), by="alice", reason="try it")
    assert kind in str(rejected.value), str(rejected.value)
    assert rejected.value.cause == cause, str(rejected.value)
    assert list(products_blueprint.revisions.all()) == before
    assert not [i for i in scratch_indices(engine) if products_blueprint.name in i]


def test_a_golden_query_that_fails_rejects_the_revision(products_blueprint, engine):
    definition = changed(products_blueprint, lambda d: d["golden_queries"].append(
        {"name": "broken", "query": {"no_such_query": {}}}))
    with pytest.raises(revisions.RevisionRejected, match="golden query 'broken'"):
        revisions.propose(products_blueprint, definition, by="alice", reason="try it")
    assert not [i for i in scratch_indices(engine) if products_blueprint.name in i]


def test_a_new_field_goes_live_through_a_cutover_and_rolls_back(products_blueprint, engine, eager_celery,
                                                                 django_user_model):
    approve = Permission.objects.get(codename="approve_cutover")
    requester, approver = (django_user_model.objects.create_user(n, password="x") for n in ("requester", "approver"))
    for user in (requester, approver):
        user.user_permissions.add(approve)
    seed(50)
    first = products_blueprint.latest_revision()
    definition = changed(products_blueprint, lambda d: d["mappings"]["properties"]["brand"].update(
        fields={"text": {"type": "text"}}))
    revision = revisions.propose(products_blueprint, definition, by="alice", reason="search brands by word")
    assert (revision.number, revision.created_by, revision.reason) == (2, "alice", "search brands by word")
    assert revision.validation["documents"] == 50 and len(revision.validation["golden_queries"]) == 2
    products_blueprint.refresh_from_db()
    assert products_blueprint.serving_revision == first  # recorded, not served yet

    query = {"size": 0, "track_total_hits": True, "query": {"match": {"brand.text": "acme"}}}
    with pipeline(products_blueprint):
        wait_converged(engine, products_blueprint.live_index().name)
        assert engine.search(products_blueprint.read_alias, query)["hits"]["total"]["value"] == 0
        cutover = cutovers.request(products_blueprint, requester)
        assert cutover.revision == revision
        cutovers.start_build(cutover, requester)
        cutover.refresh_from_db()
        assert cutover.state == Cutover.State.AWAITING_APPROVAL, cutover.guard_results
        assert cutover.to_index.revision == revision and '"text"' in cutover.mapping_diff
        cutovers.approve(cutover, approver)
        cutovers.execute(cutover, approver)
        products_blueprint.refresh_from_db()
        assert products_blueprint.serving_revision == revision and products_blueprint.revision == 2
        assert "text" in products_blueprint.mappings["properties"]["brand"]["fields"]
        engine.refresh(cutover.to_index.name)
        assert engine.search(products_blueprint.read_alias, query)["hits"]["total"]["value"] == 50

        cutovers.rollback(cutover, approver)
    products_blueprint.refresh_from_db()
    assert products_blueprint.serving_revision == first and products_blueprint.revision == 1
    assert "fields" not in products_blueprint.mappings["properties"]["brand"]


def test_command_diffs_the_files_and_proposes_them(products_blueprint, engine, capsys, monkeypatch):
    from indexing.control.registry import get_registration

    registration = get_registration("products")
    files = registration.definition()
    files["mappings"]["properties"]["description"]["fields"] = {"raw": {"type": "keyword", "ignore_above": 512}}
    monkeypatch.setattr(type(registration), "definition", lambda self: copy.deepcopy(files))

    call_command("blueprints", "diff", products_blueprint.name)
    out = capsys.readouterr().out
    assert f"--- {products_blueprint.name} r1" in out
    assert any(line.startswith("+") and '"ignore_above": 512' in line for line in out.splitlines())
    call_command("blueprints", "propose", products_blueprint.name, "--reason", "exact descriptions", "--by", "bob")
    revision = products_blueprint.latest_revision()
    assert (revision.number, revision.created_by, revision.reason) == (2, "bob", "exact descriptions")
    call_command("blueprints", "propose", products_blueprint.name, "--reason", "again")
    assert "revision 2 already" in capsys.readouterr().out


def test_blueprints_page_lists_revisions_diffs_them_and_rebuilds_with_one(products_blueprint, engine, client,
                                                                          django_user_model):
    admin = django_user_model.objects.create_superuser("boss", password="x")
    client.force_login(admin)
    definition = changed(products_blueprint, lambda d: d["mappings"]["properties"]["brand"].update(ignore_above=99))
    revision = revisions.propose(products_blueprint, definition, by="carol", reason="shorter brands")

    page = client.get("/blueprints/").content.decode()
    assert f'data-blueprint="{products_blueprint.name}"' in page and "shorter brands" in page
    assert 'data-state="serving"' in page and "Rebuild with this revision" in page
    diff = client.get(f"/blueprints/{products_blueprint.name}/diff/?a=1&b=2", HTTP_HX_REQUEST="true").content.decode()
    assert '<span class="add">+' in diff and '&quot;ignore_above&quot;: 99' in diff

    response = client.post("/cutovers/", {"blueprint": products_blueprint.name, "revision": revision.pk})
    cutover = Cutover.objects.get(blueprint=products_blueprint)
    assert response.status_code == 302 and cutover.revision == revision
    assert cutover.to_index.revision == revision
    page = client.get("/blueprints/").content.decode()
    assert 'data-state="building"' in page
    assert "r2" in client.get(f"/cutovers/{cutover.pk}/").content.decode()
    assert client.get(f"/admin/indexing/indexblueprint/{products_blueprint.pk}/change/").status_code == 200
    cutovers.cancel(cutover, admin)


def test_api_requests_a_cutover_for_a_chosen_revision(products_blueprint, engine, django_user_model):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_superuser("api-admin", password="x"))
    definition = changed(products_blueprint, lambda d: d["mappings"]["properties"]["brand"].update(ignore_above=77))
    revisions.propose(products_blueprint, definition, by="dave", reason="shorter brands")
    missing = client.post("/api/v1/cutovers/", {"blueprint": products_blueprint.name, "revision": 9}, format="json")
    assert missing.status_code == 400 and "no revision 9" in str(missing.json())
    created = client.post("/api/v1/cutovers/", {"blueprint": products_blueprint.name, "revision": 1}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["revision"] == 1
    cutover = Cutover.objects.get(pk=created.json()["id"])
    assert cutover.to_index.revision.number == 1  # a rebuild of the serving revision, not the newest
    cutovers.cancel(cutover, None)
