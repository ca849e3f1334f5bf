"""Freshness thresholds per physical index, against the real stack: the overview draws each index's
own threshold and colours the card by it, and the alert names the late index."""

import pytest

from catalog.blueprint import ensure_products_blueprint
from indexing.blueprints.indices import ensure_live_index, index_names
from indexing.core import stats
from indexing.models import Alert
from indexing.observability import alerts, freshness
from indexing.observability.overview import index_status
from tests.test_alerts import webhook  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def sidecar_blueprint(isolated_pipeline, unique, engine):
    """The shipped products blueprint: a main index refreshed every 30 s and a sidecar every second."""
    blueprint = ensure_products_blueprint(name=f"thr-{unique}")
    ensure_live_index(blueprint, engine)
    yield blueprint
    stats.clear_state(blueprint.name, "stand-in")
    for index in blueprint.indices.all():
        for name in index_names(index):
            engine.delete_index(name)


def test_a_title_change_taking_30_s_on_the_30_s_main_index_is_on_time(sidecar_blueprint, webhook, admin_client):
    live = sidecar_blueprint.live_index()
    freshness.record(sidecar_blueprint.name, "canary", [30_000.0])  # main index: refresh 30 s + 2 s budget
    freshness.record(sidecar_blueprint.name, "sidecar", [1_800.0])  # sidecar: refresh 1 s + 2 s budget
    assert alerts.evaluate(sidecar_blueprint) == []
    # No consumer runs here: a heartbeat stands in for one, so freshness is the colour's only cause.
    stats.publish_state(sidecar_blueprint.name, "stand-in", state="ok", batch_size=1)
    status = index_status(sidecar_blueprint)
    assert [(f.threshold.index, f.threshold.threshold_ms, f.breached) for f in status.freshness] == [
        (live.name, 32_000, False), (live.sidecar["name"], 3_000, False)]
    assert status.colour == "green"
    html = admin_client.get("/partials/indices/", HTTP_HX_REQUEST="true").content.decode()
    assert f'data-threshold-index="{live.name}" data-threshold-ms="32000" data-breached="false"' in html
    assert f'data-threshold-index="{live.sidecar["name"]}" data-threshold-ms="3000" data-breached="false"' in html
    assert "refresh 30000 ms + budget 2000 ms" in html and 'data-status="green"' in html


def test_a_price_change_taking_5_s_on_the_1_s_sidecar_is_late(sidecar_blueprint, webhook, admin_client):
    live = sidecar_blueprint.live_index()
    freshness.record(sidecar_blueprint.name, "canary", [20_000.0])
    freshness.record(sidecar_blueprint.name, "sidecar", [5_000.0])
    assert alerts.evaluate(sidecar_blueprint) == [Alert.Condition.FRESHNESS]
    alert = Alert.objects.get(blueprint=sidecar_blueprint, condition="freshness", state="open")
    assert live.sidecar["name"] in alert.message and "threshold 3000 ms: refresh 1000 ms + budget 2000 ms" in alert.message
    assert [(w["event"], w["condition"]) for w in webhook] == [("opened", "freshness")]
    status = index_status(sidecar_blueprint)
    assert [f.breached for f in status.freshness] == [False, True]
    stats.publish_state(sidecar_blueprint.name, "stand-in", state="ok", batch_size=1)
    html = admin_client.get("/partials/indices/", HTTP_HX_REQUEST="true").content.decode()
    assert f'data-threshold-index="{live.sidecar["name"]}" data-threshold-ms="3000" data-breached="true"' in html
    assert 'data-status="red"' in html


def test_the_blueprint_overrides_each_index_s_threshold(sidecar_blueprint, webhook):
    live = sidecar_blueprint.live_index()
    sidecar_blueprint.freshness_threshold_ms = 10_000
    sidecar_blueprint.sidecar = {**sidecar_blueprint.sidecar, "freshness_threshold_ms": 6_000}
    sidecar_blueprint.save(update_fields=["freshness_threshold_ms", "sidecar"])
    freshness.record(sidecar_blueprint.name, "sidecar", [5_000.0])  # late by the derived 3 s, on time by 6 s
    freshness.record(sidecar_blueprint.name, "canary", [20_000.0])  # on time by the derived 32 s, late by 10 s
    assert alerts.evaluate(sidecar_blueprint) == [Alert.Condition.FRESHNESS]
    alert = Alert.objects.get(blueprint=sidecar_blueprint, condition="freshness", state="open")
    assert f"on {live.name} " in alert.message and "10000 ms set in the blueprint" in alert.message
    assert [f.breached for f in index_status(sidecar_blueprint).freshness] == [True, False]
