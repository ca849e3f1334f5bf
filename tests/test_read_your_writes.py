"""Read-your-writes: an API write may return only once the change is searchable, bounded in time,
from the consumer's acknowledgements and the indices' refresh intervals (no search per client)."""

import pytest

from catalog.models import Product
from indexing.pipeline import visibility
from indexing.engines import BulkAction
from tests.helpers import pipeline

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

URL = "/api/v1/catalog/products/"


def search_ids(engine, alias, query):
    # No refresh here on purpose: "searchable" must mean a plain search finds it.
    return [h["_id"] for h in engine.search(alias, {"query": query, "size": 50})["hits"]["hits"]]


def test_create_update_delete_wait_until_searchable(products_blueprint, engine, operator_api):
    alias = products_blueprint.read_alias
    with pipeline(products_blueprint):
        created = operator_api.post(f"{URL}?wait=searchable&timeout=10",
                                    {"tenant_id": "t", "title": "Quokka lantern", "price_minor": 5, "available_qty": 1},
                                    format="json")
        assert created.status_code == 201, created.content
        body = created.json()
        assert body["search"]["outcome"] == "searchable", body["search"]
        assert [s["index"] for s in body["search"]["indices"]] == [products_blueprint.live_index().name]
        state = body["search"]["indices"][0]
        assert state["acknowledged_version"] >= 1 and state["refresh_interval_s"] == 1.0
        assert state["status"] == "searchable" and state["expected_in_ms"] == 0.0
        assert body["search"]["waited_on"] == [products_blueprint.live_index().name] and body["search"]["pending"] == []
        assert search_ids(engine, alias, {"match": {"title": "quokka"}}) == [str(body["id"])]

        updated = operator_api.patch(f"{URL}{body['id']}/?wait=searchable", {"title": "Wombat lantern"}, format="json")
        assert updated.status_code == 200 and updated.json()["search"]["outcome"] == "searchable"
        assert search_ids(engine, alias, {"match": {"title": "wombat"}}) == [str(body["id"])]

        deleted = operator_api.delete(f"{URL}{body['id']}/?wait=searchable&timeout=10")
        assert deleted.status_code == 200 and deleted.json()["search"]["outcome"] == "searchable"
        assert search_ids(engine, alias, {"match": {"title": "wombat"}}) == []

        # Without the parameter nothing changes: no "search" in the answer, 204 for a delete.
        plain = operator_api.post(URL, {"tenant_id": "t", "title": "Plain", "price_minor": 1, "available_qty": 1},
                                  format="json")
        assert plain.status_code == 201 and "search" not in plain.json()
        assert operator_api.delete(f"{URL}{plain.json()['id']}/").status_code == 204


def test_timeout_answers_with_the_lag_so_far(products_blueprint, operator_api):
    # The relay publishes but no consumer indexes: the write can never become searchable.
    with pipeline(products_blueprint, consumer=False):
        response = operator_api.post(f"{URL}?wait=searchable&timeout=0.5",
                                     {"tenant_id": "t", "title": "Never", "price_minor": 1, "available_qty": 1},
                                     format="json")
    assert response.status_code == 201  # the write itself succeeded
    search = response.json()["search"]
    assert search["outcome"] == "timeout"
    assert search["lag_ms"] >= 500 and 500 <= search["waited_ms"] < 5000
    assert search["indices"][0]["acknowledged_version"] is None
    # The answer says which index it waited on and that the write is still pending there, not yet indexed.
    assert search["pending"] == search["waited_on"] == [search["indices"][0]["index"]]
    assert search["indices"][0]["status"] == "not_indexed" and search["indices"][0]["expected_in_ms"] is None
    assert Product.objects.filter(title="Never").exists()


def test_a_sidecar_blueprint_waits_for_each_index_at_its_refresh_interval(isolated_pipeline, unique, engine,
                                                                          operator_api):
    from catalog.blueprint import ensure_products_blueprint
    from indexing.blueprints.indices import ensure_live_index, index_names

    blueprint = ensure_products_blueprint(name=f"rywside-{unique}")
    live = ensure_live_index(blueprint, engine)
    try:
        with pipeline(blueprint):
            response = operator_api.post(f"{URL}?wait=searchable&timeout=2",
                                         {"tenant_id": "t", "title": "Slow", "price_minor": 3, "available_qty": 9},
                                         format="json")
        search = response.json()["search"]
        states = {s["index"]: s for s in search["indices"]}
        assert set(states) == {live.name, live.sidecar["name"]}
        # The sidecar (1 s) is searchable within the wait, the 30 s main index is not: a timeout that says so.
        assert search["outcome"] == "timeout", search
        side, main = states[live.sidecar["name"]], states[live.name]
        assert side["searchable_at"] - side["acknowledged_at"] == pytest.approx(1.0)
        assert main["refresh_interval_s"] == 30.0 and main["acknowledged_version"] == side["acknowledged_version"]
    finally:
        for name in index_names(live):
            engine.delete_index(name)


@pytest.mark.parametrize("query, field", [
    ("wait=soon", "wait"),
    ("wait=searchable&timeout=abc", "timeout"),
    ("wait=searchable&timeout=0", "timeout"),
    ("wait=searchable&timeout=-3", "timeout"),
    ("timeout=5", "timeout"),
])
def test_bad_parameters_are_a_400_and_nothing_is_written(products_blueprint, operator_api, query, field):
    response = operator_api.post(f"{URL}?{query}", {"tenant_id": "t", "title": "Bad", "price_minor": 1,
                                                    "available_qty": 1}, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert not Product.objects.filter(title="Bad").exists()
    product = Product.objects.create(tenant_id="t", title="Kept", price_minor=1, available_qty=1, version=1)
    assert operator_api.delete(f"{URL}{product.pk}/?{query}").status_code == 400
    assert Product.objects.filter(pk=product.pk).exists()


def test_acknowledgements_are_recorded_only_while_someone_waits(unique):
    aggregate = f"ryw-{unique}"
    action = BulkAction("index", f"idx-{unique}", "1", 7, {})
    assert visibility.acknowledge(aggregate, [action], 1.0) == 0
    client = visibility._redis()
    key = visibility.WAITERS_KEY.format(aggregate=aggregate)
    client.zadd(key, {"someone": 4102444800})  # waiting until 2100
    try:
        assert visibility.acknowledge(aggregate, [action], 2.0) == 1
        # A lower version acknowledged later (a replay, a backfill) never lowers what was recorded.
        assert visibility.acknowledge(aggregate, [BulkAction("index", action.index, "1", 3, {})], 3.0) == 1
        ack = client.get(visibility.ACK_KEY.format(index=action.index, entity="1")).decode()
        assert ack.split()[0] == "7" and float(ack.split()[1]) == 2.0
    finally:
        client.delete(key, visibility.ACK_KEY.format(index=action.index, entity="1"))
