"""The commit rule with bulks in flight, broken on purpose: an earlier batch fails after a later one was
written. No offset may be committed past the failed batch; everything is replayed and the index converges."""

import random
import threading
import time

from catalog import services
from indexing.pipeline.broker import KafkaBroker
from indexing.pipeline.consumer import IndexingConsumer
from indexing.outbox.relay import OutboxRelay
from tests.helpers import random_operations, running, wait_converged


class FailingFirstBulk(Exception):
    pass


class CommitWatch(KafkaBroker):
    """The real Kafka broker, with every commit shown to ``on_commit`` first."""

    def __init__(self, blueprint, on_commit):
        super().__init__(blueprint.name, blueprint.consumer_group)
        self.on_commit = on_commit

    def commit(self, offsets):
        self.on_commit(offsets)
        super().commit(offsets)


def test_a_failed_earlier_batch_holds_back_later_commits_and_is_replayed(products_blueprint, engine, settings):
    # One partition: every batch follows the failed one on the same partition, so committing any of
    # them before the failed batch is replayed would skip it.
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "BULKS_IN_FLIGHT": 2, "TOPIC_PARTITIONS": 1}
    rng = random.Random(23)
    deleted: dict[str, int] = {}
    services.create_products_bulk([dict(tenant_id="t", title=f"P {i}", price_minor=i, available_qty=i)
                                   for i in range(1500)])
    random_operations(rng, 300, deleted, start_products=0)
    OutboxRelay().drain()

    first_batch: dict[int, int] = {}  # partition -> first offset of the batch whose bulk fails
    replayed: set[int] = set()  # partitions whose part of that batch was polled again
    violations: list[tuple[int, int]] = []
    commits: list[list] = []

    def check_commit(offsets):
        # Committing past the failed batch's first offset on a partition before that part was polled
        # again would skip it for good.
        for tp in offsets:
            if tp.partition in first_batch and tp.offset > first_batch[tp.partition] and tp.partition not in replayed:
                violations.append((tp.partition, tp.offset))
        commits.append(offsets)

    consumer = IndexingConsumer(products_blueprint, engine, batch_size=100,
                                broker=CommitWatch(products_blueprint, check_commit))
    original_prepare, original_complete = consumer.processor.prepare, consumer.processor.complete
    later_resolved = threading.Event()
    state = {"first": None, "calls": 0}
    lock = threading.Lock()

    def prepare(messages):
        prepared = original_prepare(messages)
        if state["first"] is None:
            state["first"] = prepared  # the batch polled first; its bulk will fail once
        return prepared

    def complete(prepared):
        with lock:
            state["calls"] += 1
            first = prepared is state["first"] and not state.get("failed")
            state["failed"] = state.get("failed") or first
        if first:
            # The first batch waits until the one polled after it is written, then fails.
            later_resolved.wait(30)
            raise FailingFirstBulk("the first bulk failed after the second was written")
        report = original_complete(prepared)
        later_resolved.set()
        return report

    consumer.processor.prepare, consumer.processor.complete = prepare, complete
    original_register = consumer.order.register

    def register(messages):
        if not first_batch:
            for m in messages:
                first_batch[m.partition] = min(first_batch.get(m.partition, m.offset), m.offset)
        else:
            replayed.update(m.partition for m in messages
                            if m.partition in first_batch and m.offset == first_batch[m.partition])
        return original_register(messages)

    consumer.order.register = register
    with running(lambda stop: consumer.run(stop), "consumer"):
        assert later_resolved.wait(60), "the second batch was never written"
        wait_converged(engine, products_blueprint.live_index().name, deleted, timeout=120)

    assert state["calls"] >= 3  # the failed batch and the one after it were processed again
    assert commits, "nothing was committed"
    assert not violations, f"offsets committed past the failed batch before it was replayed: {violations[:5]}"
    assert replayed == set(first_batch)
    from indexing.observability.lag import consumer_lag

    assert sum(p.lag for p in consumer_lag(products_blueprint, timeout=5)) == 0


def test_the_next_request_is_sent_while_an_answer_is_resolved_one_on_the_wire_at_a_time(products_blueprint, engine,
                                                                                        settings, monkeypatch):
    """One request in flight (the default), yet the node is not kept waiting on our answer handling: a
    batch whose answer is slow to resolve does not hold back the next batch's request, and never are two
    requests on the wire at once."""
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "BULKS_IN_FLIGHT": 1, "TOPIC_PARTITIONS": 1}
    deleted: dict[str, int] = {}
    services.create_products_bulk([dict(tenant_id="t", title=f"P {i}", price_minor=i, available_qty=i)
                                   for i in range(400)])
    OutboxRelay().drain()

    consumer = IndexingConsumer(products_blueprint, engine, batch_size=100)
    lock = threading.Lock()
    timeline: list[tuple[str, int]] = []  # ("sent" | "answered" | "resolved", batch number)
    on_wire = {"now": 0, "most": 0}
    batches = {}  # id(prepared) -> batch number
    original_send, original_complete = consumer.engine._send_bulk, consumer.processor.complete
    sending = threading.local()

    def send(body):
        with lock:
            on_wire["now"] += 1
            on_wire["most"] = max(on_wire["most"], on_wire["now"])
            timeline.append(("sent", sending.batch))
        try:
            return original_send(body)
        finally:
            with lock:
                on_wire["now"] -= 1
                timeline.append(("answered", sending.batch))

    def complete(prepared):
        with lock:
            sending.batch = batches.setdefault(id(prepared), len(batches))
        report = original_complete(prepared)
        if sending.batch == 0:
            time.sleep(1.0)  # the first answer is slow to resolve (a dead letter to store, say)
        with lock:
            timeline.append(("resolved", sending.batch))
        return report

    monkeypatch.setattr(consumer.engine, "_send_bulk", send)  # the test's engine: put back afterwards
    consumer.processor.complete = complete
    with running(lambda stop: consumer.run(stop), "consumer"):
        wait_converged(engine, products_blueprint.live_index().name, deleted, timeout=60)

    assert on_wire["most"] == 1, "two requests were on the wire at once"
    assert timeline.index(("sent", 1)) < timeline.index(("resolved", 0)), \
        f"the second batch's request waited for the first answer to be resolved: {timeline[:8]}"
