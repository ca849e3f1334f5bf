"""Alerting hooks: one open alert per condition until it clears, sent to a real webhook receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from indexing.observability import alerts, freshness
from indexing.models import Alert, DeadLetter, Reconciliation


@pytest.fixture
def webhook(settings):
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SEARCHSYNC = {**settings.SEARCHSYNC,
                           "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{server.server_port}/hook"}
    yield received
    server.shutdown()


def test_freshness_alert_opens_once_and_resolves(products_blueprint, webhook):
    freshness.record(products_blueprint.name, "canary", [5000.0])  # p99 5 s > 2 s threshold
    for _ in range(3):
        assert alerts.evaluate(products_blueprint) == ["freshness"]
    assert Alert.objects.filter(condition="freshness").count() == 1
    assert [(w["event"], w["condition"]) for w in webhook] == [("opened", "freshness")]
    assert "5000 ms" in webhook[0]["message"]

    from indexing.core.redis_store import get_redis

    for key in get_redis().scan_iter(f"searchsync:freshness:{products_blueprint.name}:*"):
        get_redis().delete(key)
    freshness.record(products_blueprint.name, "canary", [300.0])
    assert alerts.evaluate(products_blueprint) == []
    alert = Alert.objects.get()
    assert alert.state == "resolved" and alert.notified
    assert [w["event"] for w in webhook] == ["opened", "resolved"]


def test_drift_and_dead_letter_alerts(products_blueprint, webhook):
    Reconciliation.objects.create(blueprint=products_blueprint, index_name="x", status="completed", missing=3,
                                  finished_at="2026-01-01T00:00:00Z")
    DeadLetter.objects.create(blueprint=products_blueprint, topic="t", partition=0, offset=1, reason="undecodable", error="e")
    assert sorted(alerts.evaluate(products_blueprint)) == ["dead_letters", "drift"]
    DeadLetter.objects.create(blueprint=products_blueprint, topic="t", partition=0, offset=2, reason="undecodable", error="e")
    alerts.evaluate(products_blueprint)  # grows again: same alert, updated, not re-sent
    assert Alert.objects.filter(state="open").count() == 2
    assert Alert.objects.get(condition="dead_letters").value == 2
    assert sorted(w["condition"] for w in webhook) == ["dead_letters", "drift"]
    DeadLetter.objects.update(status="discarded")
    Reconciliation.objects.create(blueprint=products_blueprint, index_name="x", status="completed",
                                  finished_at="2026-01-02T00:00:00Z")
    assert alerts.evaluate(products_blueprint) == []
    assert not Alert.objects.filter(state="open").exists()


def test_unreachable_webhook_is_recorded_and_the_alert_stands(products_blueprint, settings, admin_client, engine):
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "ALERT_WEBHOOK_URL": "http://127.0.0.1:1/hook",
                           "ALERT_WEBHOOK_TIMEOUT_S": 1}
    freshness.record(products_blueprint.name, "event", [9000.0])
    alerts.evaluate(products_blueprint)
    alert = Alert.objects.get()
    assert alert.state == "open" and not alert.notified and alert.notify_error
    page = admin_client.get("/partials/indices/").content.decode()
    assert 'data-alert="freshness"' in page and 'data-status="red"' in page


def test_a_red_search_cluster_opens_an_alert_shows_on_the_overview_and_resolves(transactional_db, engine, unique,
                                                                                  webhook, admin_client):
    # A real red cluster without stopping anything: an index whose only shard may live on no
    # existing node has an unassigned primary.
    name = f"red-{unique}"
    settings = {"number_of_shards": 1, "number_of_replicas": 0, "routing.allocation.require._name": "no-such-node"}
    # not through the adapter: its create waits for the primary, which will never start
    requests.put(f"{engine.hosts[0]}/{name}", params={"wait_for_active_shards": "0"}, json={"settings": settings},
                 timeout=30).raise_for_status()
    try:
        assert engine.cluster_health().status == "red"
        for _ in range(2):
            assert alerts.evaluate_cluster() is True
        alert = Alert.objects.get(condition=Alert.Condition.CLUSTER_RED, state=Alert.State.OPEN)
        assert alert.blueprint is None and alert.value >= 1
        page = admin_client.get("/partials/indices/").content.decode()
        assert 'data-cluster-health="red"' in page and 'data-alert="cluster_red"' in page
    finally:
        engine.delete_index(name)
    assert alerts.evaluate_cluster() is False
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED
    assert [(w["event"], w["condition"]) for w in webhook] == [("opened", "cluster_red"), ("resolved", "cluster_red")]
    assert 'data-cluster-health="red"' not in admin_client.get("/partials/indices/").content.decode()
