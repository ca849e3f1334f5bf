"""One dead letter per message: reading poison messages again after an offset rewind, or the relay
failing on the same outbox row again, counts attempts on the rows already there; a replayed letter
that fails again is a pending row of its own while the original stays replayed."""

import pytest
from confluent_kafka import Consumer, TopicPartition
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from indexing.core.topics import ensure_topic, topic_for
from indexing.models import DeadLetter, OutboxEvent
from indexing.observability.lag import consumer_lag
from indexing.outbox.relay_dead_letters import Unpublishable, dead_letter
from indexing.pipeline.consumer import consumer_config
from tests.helpers import pipeline, wait_until
from tests.kafka_helpers import event, produce

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def topic(products_blueprint):
    ensure_topic(products_blueprint.topic)
    return products_blueprint.topic


@pytest.fixture
def broken_builder():
    from indexing.blueprints.documents import register_builder, unregister_builder

    @register_builder("attempts-broken-products")
    def broken(event):
        raise KeyError("brand_name")

    yield "attempts-broken-products"
    unregister_builder("attempts-broken-products")


def rewind(blueprint):
    """Commit offset 0 on every partition of the group, as an operator replaying a topic does."""
    rewinder = Consumer(consumer_config(blueprint.consumer_group))
    partitions = rewinder.list_topics(blueprint.topic, timeout=10).topics[blueprint.topic].partitions
    rewinder.commit(offsets=[TopicPartition(blueprint.topic, p, 0) for p in partitions], asynchronous=False)
    rewinder.close()


def drained(blueprint):
    return all(p.lag == 0 for p in consumer_lag(blueprint))


def poison_messages():
    schema_invalid = event(2, 1)
    del schema_invalid["payload"]["price_minor"]
    return [("1", event(1, 1)), ("x", b"\xff\xfe not json"), ("2", schema_invalid),
            ("3", event(3, 1, available_qty=3_000_000_000)), ("4", event(4, 1)), ("y", b"{broken")]


def test_a_rewind_over_poison_messages_counts_a_second_attempt_on_each_row(products_blueprint, topic,
                                                                           admin_client, operator_api):
    produce(topic, poison_messages(), partition=0)
    with pipeline(products_blueprint, relay=False):
        wait_until(lambda: DeadLetter.objects.count() == 4 and drained(products_blueprint), message="dead letters")
    first = {d.pk: d for d in DeadLetter.objects.all()}
    assert {d.attempts for d in first.values()} == {1}

    rewind(products_blueprint)
    with pipeline(products_blueprint, relay=False):
        wait_until(lambda: set(DeadLetter.objects.values_list("attempts", flat=True)) == {2}
                   and drained(products_blueprint), timeout=90, message="the poison read again")
    letters = list(DeadLetter.objects.all())
    assert len(letters) == 4 and {d.pk for d in letters} == set(first)  # the same rows, no second copy
    for letter in letters:
        assert letter.last_seen_at > first[letter.pk].last_seen_at
        assert letter.created_at == first[letter.pk].created_at
    assert {(d.partition, d.offset) for d in letters} == {(0, 1), (0, 2), (0, 3), (0, 5)}

    page = admin_client.get(f"/dead-letters/?blueprint={products_blueprint.name}").content.decode()
    assert page.count('data-attempts="2"') == 4 and "Attempts" in page
    detail = admin_client.get(f"/dead-letters/{letters[0].pk}/").content.decode()
    assert 'data-attempts="2"' in detail
    listed = operator_api.get(f"/api/v1/dead-letters/?blueprint={products_blueprint.name}").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert {r["attempts"] for r in rows} == {2} and all(r["last_seen_at"] for r in rows)


def test_a_replayed_letter_that_fails_again_is_a_pending_row_of_its_own(products_blueprint, topic, broken_builder,
                                                                       operator_api, engine):
    products_blueprint.document_builder = broken_builder
    products_blueprint.save()
    index = products_blueprint.live_index().name
    produce(topic, [("31", event(31, 1))])
    with pipeline(products_blueprint, relay=False):
        original = wait_until(lambda: DeadLetter.objects.filter(reason="build_failed").first(), message="dead letter")
        # Replayed before the fix: the copy fails too, at its own offset.
        assert operator_api.post(f"/api/v1/dead-letters/{original.pk}/replay/").status_code == 200
        again = wait_until(lambda: DeadLetter.objects.exclude(pk=original.pk).first(), message="the replay failing")
        wait_until(lambda: drained(products_blueprint), message="offsets committed")
    original.refresh_from_db()
    assert (original.status, original.attempts, original.replay_count) == ("replayed", 1, 1)
    assert (again.status, again.attempts, again.raw_value) == ("pending", 1, original.raw_value)
    assert (again.partition, again.offset) != (original.partition, original.offset)  # a new message

    # A rewind reads both again and they fail again: no new row, and the replayed one keeps its status.
    # (Two copies of one version read in the same batch are one write: the other is superseded.)
    rewind(products_blueprint)
    with pipeline(products_blueprint, relay=False):
        wait_until(lambda: sum(DeadLetter.objects.values_list("attempts", flat=True)) >= 3
                   and drained(products_blueprint), timeout=90, message="both read again")
    assert DeadLetter.objects.count() == 2
    assert DeadLetter.objects.get(pk=original.pk).status == "replayed"
    assert DeadLetter.objects.get(pk=again.pk).status == "pending"

    # Fixed, the pending one replays and is indexed.
    products_blueprint.document_builder = "products"
    products_blueprint.save()
    with pipeline(products_blueprint, relay=False):
        assert operator_api.post(f"/api/v1/dead-letters/{again.pk}/replay/").status_code == 200
        wait_until(lambda: engine.get(index, "31"), message="indexed after the fix")
    assert DeadLetter.objects.count() == 2


def test_the_relay_dead_lettering_the_same_outbox_row_again_counts_an_attempt(isolated_pipeline):
    from catalog import services

    product = services.create_product(tenant_id="t", title="Again", price_minor=1, available_qty=1)
    row = OutboxEvent.objects.get(aggregate_id=str(product.pk))
    for error in ("too large", "still too large"):
        dead_letter([Unpublishable(row, topic_for("product"), DeadLetter.Reason.TOO_LARGE, error, b"{}")])
    letter = DeadLetter.objects.get()
    assert (letter.source, letter.attempts, letter.error) == ("outbox", 2, "still too large")


def test_the_migration_merges_letters_stored_twice(products_blueprint):
    executor = MigrationExecutor(connection)
    before, after = ("indexing", "0014_deadletter_unknown_aggregate"), ("indexing", "0015_deadletter_attempts")
    executor.migrate([before])
    try:
        apps = executor.loader.project_state([before]).apps
        Letter = apps.get_model("indexing", "DeadLetter")
        common = dict(blueprint_id=products_blueprint.pk, topic="t", partition=0, reason="schema_invalid", error="e")
        kept = Letter.objects.create(offset=7, status="replayed", **common)
        Letter.objects.create(offset=7, status="pending", **common)
        Letter.objects.create(offset=8, **common)
        outbox = dict(source="outbox", topic="t", reason="too_large", error="e", event_id="ev-1")
        Letter.objects.create(**outbox)
        Letter.objects.create(**outbox)
    finally:
        executor.loader.build_graph()
        executor.migrate([after])
    merged = DeadLetter.objects.get(pk=kept.pk)
    assert (merged.attempts, merged.status) == (2, "pending")  # one of them still waited for an operator
    assert DeadLetter.objects.filter(offset=8).get().attempts == 1
    assert DeadLetter.objects.get(source="outbox").attempts == 2
    assert DeadLetter.objects.count() == 3
