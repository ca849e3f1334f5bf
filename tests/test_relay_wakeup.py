"""The relay's wake-up leaves the commit path: it is asked for after commit, once per transaction, never on
rollback, and a relay that misses it (Redis down) still publishes the rows by polling."""

import pytest
from django.db import transaction

from catalog import services
from indexing.outbox import wakeup as relay_wakeup
from indexing.models import OutboxEvent
from indexing.core.redis_store import get_redis
from indexing.outbox.relay import OutboxRelay
from tests.helpers import running, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


def pending() -> int:
    return get_redis().llen(relay_wakeup.wakeup_key())


@pytest.fixture
def clear_wakeups():
    get_redis().delete(relay_wakeup.wakeup_key())
    yield
    get_redis().delete(relay_wakeup.wakeup_key())


def test_a_wakeup_is_pushed_after_commit_once_per_transaction(clear_wakeups):
    with transaction.atomic():
        for i in range(3):
            services.create_product(tenant_id="t", title=f"Chair {i}", price_minor=1, available_qty=1)
        conn = transaction.get_connection()
        asked = [f for _, f, _ in conn.run_on_commit if f is relay_wakeup._wake_pending["default"]]
        assert len(asked) == 1  # three emits, one wake-up
        assert pending() == 0  # nothing before the commit
    wait_until(lambda: pending() == 1, timeout=10, interval=0.01, message="the wake-up pushed after commit")
    # Wake-ups coalesce: however many transactions commit, the relay finds one token.
    for i in range(5):
        services.create_product(tenant_id="t", title=f"Table {i}", price_minor=1, available_qty=1)
    wait_until(lambda: relay_wakeup._pusher._keys == set(), timeout=10, interval=0.01)
    assert pending() == 1
    assert relay_wakeup.wait_for_wakeup(0.1) is True
    assert pending() == 0


def test_a_rolled_back_transaction_wakes_nobody(clear_wakeups):
    with pytest.raises(Boom):
        with transaction.atomic():
            services.create_product(tenant_id="t", title="Chair", price_minor=1, available_qty=1)
            raise Boom()
    assert relay_wakeup.wait_for_wakeup(0.5) is False
    assert pending() == 0


def test_without_redis_writes_commit_and_the_relay_polls_the_rows_out(clear_wakeups, products_blueprint):
    from django.conf import settings

    from indexing.core import redis_store

    real_url = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    redis_store.get_redis.cache_clear()
    try:
        services.create_product(tenant_id="t", title="Chair", price_minor=1, available_qty=1)
        assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 1
        with running(OutboxRelay(poll_s=0.2).run, "relay"):
            wait_until(lambda: not OutboxEvent.objects.filter(published_at__isnull=True).exists(), timeout=90,
                       message="the relay publishing by polling")
    finally:
        settings.REDIS_URL = real_url
        redis_store.get_redis.cache_clear()
