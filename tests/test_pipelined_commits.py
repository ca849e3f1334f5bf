"""The commit rule with bulks in flight, broken on purpose: an earlier batch fails after a later one was
written. No offset may be committed past the failed batch; everything is replayed and the index converges."""

import random
import threading

from catalog import services
from indexing.consumer import IndexingConsumer
from indexing.relay import OutboxRelay
from tests.helpers import random_operations, running, wait_converged


class FailingFirstBulk(Exception):
    pass


def test_a_failed_earlier_batch_holds_back_later_commits_and_is_replayed(products_blueprint, engine, settings):
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "BULKS_IN_FLIGHT": 2}
    rng = random.Random(23)
    deleted: dict[str, int] = {}
    services.create_products_bulk([dict(tenant_id="t", title=f"P {i}", price_minor=i, available_qty=i)
                                   for i in range(1500)])
    random_operations(rng, 300, deleted, start_products=0)
    OutboxRelay().drain()

    consumer = IndexingConsumer(products_blueprint, engine, batch_size=100)
    original_complete = consumer.processor.complete
    later_resolved = threading.Event()
    state = {"failed_batch": None, "calls": 0}
    lock = threading.Lock()

    def complete(prepared):
        with lock:
            state["calls"] += 1
            first = state["calls"] == 1
        if first:
            # The first batch waits until the one polled after it is written, then fails.
            later_resolved.wait(30)
            raise FailingFirstBulk("the first bulk failed after the second was written")
        report = original_complete(prepared)
        later_resolved.set()
        return report

    consumer.processor.complete = complete
    first_batch: set[tuple[int, int]] = set()
    commits: list[bool] = []  # per commit: had the failed batch been polled again before it?
    original_register, original_commit = consumer.order.register, consumer._commit

    def register(messages):
        pairs = {(m.partition, m.offset) for m in messages}
        if not first_batch:
            first_batch.update(pairs)
        elif pairs & first_batch:
            state["replayed"] = True
        return original_register(messages)

    def commit(messages):
        if messages:
            commits.append(state.get("replayed", False))
        original_commit(messages)

    consumer.order.register, consumer._commit = register, commit
    with running(lambda stop: consumer.run(stop), "consumer"):
        assert later_resolved.wait(60), "the second batch was never written"
        wait_converged(engine, products_blueprint.live_index().name, deleted, timeout=120)

    assert state["calls"] >= 3  # the failed batch and the one after it were processed again
    assert commits, "nothing was committed"
    assert all(commits), "a later batch was committed while the earlier failed batch was unresolved"
    from indexing.lag import consumer_lag

    assert sum(p.lag for p in consumer_lag(products_blueprint, timeout=5)) == 0
