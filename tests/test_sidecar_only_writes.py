"""Sidecar-only writes through the live pipeline: a price change rewrites the sidecar only, waits only
for it, and the main index it left alone is still judged right by reconciliation, the cutover guard
and the document inspector, and repaired when it really drifted."""

import pytest

from backfills import guards
from catalog.blueprint import ensure_products_blueprint
from catalog.models import Product
from indexing.blueprints.indices import ensure_live_index, index_names
from indexing.core import stats
from indexing.observability import freshness
from indexing.observability.inspector import inspect
from indexing.reconciliation import reconcile
from tests.helpers import pipeline, wait_converged, wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

URL = "/api/v1/catalog/products/"
FAST = ["price_minor", "available_qty"]


@pytest.fixture
def blueprint(isolated_pipeline, unique, engine):
    """The shipped products blueprint with its sidecar, the main index at a 3 s refresh (30 s shipped)
    so that the test sees a main write become searchable."""
    blueprint = ensure_products_blueprint(name=f"sideonly-{unique}", sidecar={
        "fields": FAST, "refresh_interval": "1s", "main_refresh_interval": "3s"})
    live = ensure_live_index(blueprint, engine)
    yield blueprint
    for name in index_names(live):
        engine.delete_index(name)


def versions(engine, live, pid):
    return engine.get(live.name, pid)["_version"], engine.get(live.sidecar["name"], pid)["_version"]


def states(response):
    return {s["index"]: s for s in response.json()["search"]["indices"]}


def test_a_price_change_writes_and_waits_for_the_sidecar_only(blueprint, engine, operator_api, admin_client):
    live = blueprint.live_index()
    main, side = live.name, live.sidecar["name"]
    with pipeline(blueprint):
        created = operator_api.post(f"{URL}?wait=searchable&timeout=10",
                                    {"tenant_id": "t", "title": "Quokka lamp", "price_minor": 500, "available_qty": 3},
                                    format="json")
        assert created.json()["search"]["outcome"] == "searchable", created.json()
        pid = str(created.json()["id"])
        first = Product.objects.get(pk=pid).change_stamp

        # A price change: the sidecar gets the new version, the main document is not rewritten.
        priced = operator_api.patch(f"{URL}{pid}/?wait=searchable&timeout=10", {"price_minor": 450}, format="json")
        search = priced.json()["search"]
        now = Product.objects.get(pk=pid).change_stamp
        assert search["outcome"] == "searchable", search
        # The main part holds the new version with the content acknowledged at the create (searchable
        # since): the answer waited for the sidecar's refresh, not for a new main write's.
        assert states(priced)[main]["acknowledged_version"] == now
        assert states(priced)[main]["acknowledged_at"] == states(created)[main]["acknowledged_at"]
        assert versions(engine, live, pid) == (first, now)
        assert engine.get(side, pid)["_source"]["price_minor"] == 450
        assert stats.counters(blueprint.name).get("main_unchanged") == 1

        # A title change rewrites both; its wait is the main index's (3 s > the 1 s timeout asked).
        titled = operator_api.patch(f"{URL}{pid}/?wait=searchable&timeout=1", {"title": "Wombat lamp"}, format="json")
        assert titled.json()["search"]["outcome"] == "timeout"
        assert main in titled.json()["search"]["pending"]
        latest = Product.objects.get(pk=pid).change_stamp
        assert versions(engine, live, pid) == (latest, latest)
        assert engine.get(main, pid)["_source"]["title"] == "Wombat lamp"

        # Stock changes for 20 products: their main documents stay at the create's versions.
        others = [operator_api.post(URL, {"tenant_id": "t", "title": f"Lamp {i}", "price_minor": 100 + i,
                                          "available_qty": i}, format="json").json()["id"] for i in range(20)]
        wait_until(lambda: all(engine.get(main, str(o)) for o in others), message="20 products indexed")
        for o in others:
            operator_api.patch(f"{URL}{o}/", {"available_qty": 0}, format="json")
        wait_converged(engine, main)
        behind = [o for o in others if versions(engine, live, str(o))[0] < versions(engine, live, str(o))[1]]
        assert len(behind) == 20

        # Not drift: reconciliation of each index, the cutover guard's sample, the inspector.
        assert reconcile(blueprint, dry_run=True).drift == 0
        assert reconcile(blueprint, dry_run=True, index_name=side).drift == 0
        assert guards.reconciliation_sample(live, engine).passed
        seen = inspect(blueprint, str(others[0]))
        assert seen.state == "in_sync", seen.verdict
        assert "only sidecar fields changed since" in seen.verdict
        page = admin_client.get(f"/documents/{blueprint.name}/{others[0]}/")
        assert page.status_code == 200 and b"data-main-unchanged" in page.content

        # Real drift in a main index the consumer remembers: reconciliation's re-emit (at the row's
        # version, which the consumer has seen) is written in full and repairs it.
        lost = str(others[1])
        engine.client.delete(index=main, id=lost)
        report = reconcile(blueprint, dry_run=False)
        assert (report.missing, report.repaired) == (1, 1)
        wait_until(lambda: engine.get(main, lost), message="the main document repaired")
        wait_converged(engine, main)

        # The freshness canary carries the same payload every round: it is written in full, so its
        # version is searchable in the main index too, round after round.
        for _ in range(2):
            version, committed_at = freshness.send_canary(blueprint)
            assert freshness.await_canary(blueprint, version, committed_at, timeout_s=30) is not None
    assert reconcile(blueprint, dry_run=True).drift == 0
