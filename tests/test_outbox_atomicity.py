"""Invariants 1 and 2: the outbox row commits with the entity change or not at all, and nothing
downstream (Kafka, the search cluster) can block or fail an application write."""

import pytest
from django.db import IntegrityError, transaction

from catalog import services
from catalog.models import Product
from indexing.outbox import emit as outbox
from indexing.models import OutboxEvent
from indexing.outbox.relay import OutboxRelay


class Boom(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_failure_after_the_entity_write_leaves_neither_row():
    with pytest.raises(Boom):
        with transaction.atomic():
            services.create_product(tenant_id="t", title="Chair", price_minor=1, available_qty=1)
            assert Product.objects.count() == 1 and OutboxEvent.objects.count() == 1
            raise Boom()
    assert Product.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_failed_outbox_insert_rolls_back_the_entity_change():
    product = services.create_product(tenant_id="t", title="Chair", price_minor=1, available_qty=1)
    with pytest.raises(IntegrityError, match="version"):
        with transaction.atomic():
            Product.objects.filter(pk=product.pk).update(title="Changed", version=2)
            # version NULL violates the outbox's NOT NULL: the insert fails inside the same transaction.
            outbox.emit(aggregate_type="product", aggregate_id=product.pk, version=None, payload={})
    product.refresh_from_db()
    assert (product.title, product.version) == ("Chair", 1)
    assert OutboxEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_emit_refuses_to_run_outside_a_transaction():
    with pytest.raises(outbox.OutboxOutsideTransaction):
        outbox.emit(aggregate_type="product", aggregate_id=1, version=1, payload={})


@pytest.mark.django_db(transaction=True)
def test_unreachable_kafka_leaves_rows_waiting_and_writes_unaffected(isolated_pipeline, product_aggregate_declared):
    relay = OutboxRelay(delivery_timeout_s=5)
    relay.producer = __import__("indexing.core.producer", fromlist=["build_producer"]).build_producer(
        **{"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 2000})
    relay.assume_topic_exists(f"{isolated_pipeline.SEARCHSYNC['TOPIC_PREFIX']}product")  # skip the admin call
    for i in range(20):
        services.create_product(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=i)
    assert relay.relay_once() == 0
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 20
    # Application writes go on while the relay is failing.
    services.create_product(tenant_id="t", title="after", price_minor=1, available_qty=1)
    # Once Kafka is reachable again, a healthy relay publishes every waiting row exactly once.
    healthy = OutboxRelay()
    assert healthy.drain() == 21
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_share_rows_without_double_publishing(isolated_pipeline, product_aggregate_declared):
    import threading

    services.create_products_bulk([dict(tenant_id="t", title=f"P{i}", price_minor=i, available_qty=i) for i in range(3000)])
    relays = [OutboxRelay(batch_size=100) for _ in range(3)]
    counts = [0, 0, 0]

    def work(i):
        from django.db import connections

        try:
            counts[i] = relays[i].drain()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 3000
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
