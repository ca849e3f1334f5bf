"""The /metrics endpoint exposes the pipeline's series with plausible values after traffic."""

from prometheus_client.parser import text_string_to_metric_families

from catalog import services
from tests.helpers import pipeline, wait_until
from tests.kafka_helpers import produce


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_after_a_run_of_traffic(client, products_blueprint, engine):
    name = products_blueprint.name
    relayed_before = value(scrape(client), "searchsync_relay_rows_total", outcome="relayed") or 0
    with pipeline(products_blueprint):
        for i in range(30):
            services.create_product(tenant_id="t", title=f"Metric {i}", price_minor=i, available_qty=1)
        produce(products_blueprint.topic, [("x", b"not json")])
        wait_until(lambda: (value(scrape(client), "searchsync_events_total", blueprint=name, outcome="indexed") or 0) >= 30)
        wait_until(lambda: value(scrape(client), "searchsync_dead_letters_pending", blueprint=name, reason="undecodable") == 1)
        # The relay's counters ride on its heartbeat, once a second.
        wait_until(lambda: value(scrape(client), "searchsync_relay_rows_total", outcome="relayed") >= relayed_before + 30)
        samples = scrape(client)  # anonymous: Prometheus scrapes without a login
    assert value(samples, "searchsync_events_total", blueprint=name, outcome="dead_lettered") == 1
    assert value(samples, "searchsync_bulk_duration_seconds_count", blueprint=name) >= 1
    assert value(samples, "searchsync_bulk_documents_total", blueprint=name) >= 30
    p99 = value(samples, "searchsync_freshness_seconds", blueprint=name, source="event", quantile="0.99")
    assert p99 is not None and 0 < p99 < 60
    lags = [v for (n, labels), v in samples.items() if n == "searchsync_consumer_lag" and ("blueprint", name) in labels]
    assert len(lags) == 4 and all(v >= 0 for v in lags)
    assert value(samples, "searchsync_outbox_unpublished") == 0
    assert value(samples, "searchsync_relay_rows_total", outcome="dead_lettered") is not None
