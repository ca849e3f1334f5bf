"""Invariant 11: freshness is measured through the real path, per event and per canary."""

import time
from datetime import timedelta

from django.utils import timezone

from indexing.observability import freshness
from indexing.core import stats
from indexing.models import FreshnessMinute, OutboxEvent
from indexing.observability.overview import index_status
from indexing.outbox.relay import clean_published
from tests.helpers import pipeline


def test_canary_travels_the_real_path_and_is_measured(products_blueprint, engine):
    with pipeline(products_blueprint):
        version, committed_at = freshness.send_canary(products_blueprint)
        lag = freshness.await_canary(products_blueprint, version, committed_at, timeout_s=30)
    assert lag is not None and 0 < lag < 30_000
    # The canary went through the outbox and was published like any event.
    row = OutboxEvent.objects.get(aggregate_id="__canary__")
    assert row.published_at is not None
    # It is in the physical index but hidden from search clients by the read alias.
    engine.refresh(products_blueprint.read_alias)
    assert engine.get(products_blueprint.live_index().name, "__canary__")["_version"] == version
    assert engine.count(products_blueprint.read_alias) == 0
    recent = freshness.recent(products_blueprint.name, "canary", 60)
    assert recent.count == 1
    assert abs(recent.p99_ms - lag) < 1


def test_event_lag_is_recorded_and_rolled_up_per_minute(products_blueprint, engine):
    from catalog import services

    with pipeline(products_blueprint):
        for i in range(20):
            services.create_product(tenant_id="t", title=f"Lamp {i}", price_minor=i, available_qty=1)
        deadline = time.monotonic() + 30
        while (freshness.recent(products_blueprint.name, "event", 60) or freshness.Quantiles(0, 0, 0, 0, 0)).count < 20:
            assert time.monotonic() < deadline, "event lags never recorded"
            time.sleep(0.2)
    q = freshness.recent(products_blueprint.name, "event", 60)
    assert q.p50_ms <= q.p95_ms <= q.p99_ms <= q.max_ms
    # Roll up "next minute": the finished minute becomes a FreshnessMinute row.
    assert freshness.roll_up(products_blueprint, now=time.time() + 60) >= 1
    row = FreshnessMinute.objects.get(blueprint=products_blueprint, source="event")
    assert row.count == 20
    engine.refresh(products_blueprint.read_alias)
    status = index_status(products_blueprint)
    assert status.event_lag.count == 20 and status.documents == 20


def test_a_canary_that_never_arrives_is_recorded_as_the_timeout(products_blueprint):
    # No relay and no consumer: the canary cannot become searchable.
    version, committed_at = freshness.send_canary(products_blueprint)
    assert freshness.await_canary(products_blueprint, version, committed_at, timeout_s=1) is None
    recent = freshness.recent(products_blueprint.name, "canary", 60)
    assert recent.max_ms == 1000
    # Past the threshold → the index shows red. No consumer runs here, which alone is red too: a
    # heartbeat stands in for one, so the colour below has the threshold as its only cause.
    products_blueprint.freshness_threshold_ms = 500
    products_blueprint.save(update_fields=["freshness_threshold_ms"])
    stats.publish_state(products_blueprint.name, "stand-in", state="ok", batch_size=1)
    try:
        status = index_status(products_blueprint)
        assert status.consumers and not status.errors and not status.alerts and not status.dead_letters
        assert status.canary_lag.p99_ms > status.threshold_ms
        assert status.colour == "red"
    finally:
        stats.clear_state(products_blueprint.name, "stand-in")


def test_published_outbox_rows_are_cleaned_after_retention(products_blueprint):
    from catalog import services
    from indexing.outbox.relay import OutboxRelay

    for i in range(5):
        services.create_product(tenant_id="t", title=f"Old {i}", price_minor=i, available_qty=1)
    OutboxRelay().drain()
    services.create_product(tenant_id="t", title="Unpublished", price_minor=1, available_qty=1)
    OutboxEvent.objects.filter(published_at__isnull=False).update(published_at=timezone.now() - timedelta(hours=48))
    assert clean_published(timedelta(hours=24)) == 5
    # Unpublished rows are never cleaned, however old.
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 1


def test_two_consumers_share_partitions_and_a_rebalance_loses_nothing(products_blueprint, engine):
    import random

    from indexing.pipeline.consumer import IndexingConsumer
    from tests.helpers import random_operations, running, wait_converged

    rng = random.Random(21)
    deleted = {}
    with pipeline(products_blueprint):
        random_operations(rng, 800, deleted, start_products=200)
        # A second consumer joins mid-stream: the group rebalances while the first is busy.
        second = IndexingConsumer(products_blueprint)
        with running(second.run, "second-consumer"):
            random_operations(rng, 800, deleted, start_products=0)
            wait_converged(engine, products_blueprint.live_index().name, deleted)
            consumers = stats.consumer_states(products_blueprint.name)
    partitions = [set(c["partitions"]) for c in consumers.values()]
    assert len(partitions) == 2 and all(partitions) and not (partitions[0] & partitions[1])
