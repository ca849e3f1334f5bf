"""Invariant 12: no outbox row blocks the others. A row the relay can never publish (too large for
the producer or for the topic, unencodable) becomes an outbox dead letter with its bytes and reason;
the rows behind it are published; transient broker errors still retry instead of dead-lettering."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from django.conf import settings

from indexing.models import DeadLetter, OutboxEvent
from indexing.core.producer import build_producer
from indexing.outbox.relay import OutboxRelay
from indexing.outbox.relay_dead_letters import Unpublishable, dead_letter, encode
from indexing.core.topics import admin_client, topic_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("product_aggregate_declared")]

LIMIT = 1_000_000


@pytest.fixture(autouse=True)
def small_messages(isolated_pipeline):
    """A 1 MB message limit keeps the oversized rows of these tests cheap to write."""
    isolated_pipeline.SEARCHSYNC = {**isolated_pipeline.SEARCHSYNC, "MAX_MESSAGE_BYTES": LIMIT}
    return isolated_pipeline


def outbox_row(entity_id: str, description: str = "", version: int = 1) -> OutboxEvent:
    """Written straight to the outbox, as a writer that skips the API's bounds would."""
    return OutboxEvent.objects.create(
        aggregate_type="product", aggregate_id=entity_id, event_type="PRODUCT_UPSERT", version=version,
        tenant_id="t", payload={"title": f"P{entity_id}", "description": description, "price_minor": 1,
                                "available_qty": 1})


def incompressible(n_bytes: int) -> str:
    return os.urandom(n_bytes // 2).hex()  # lz4 cannot shrink random hex much


def keys_in_topic(topic: str, expected: int, timeout: float = 30.0) -> list[str]:
    consumer = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": f"probe-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    keys: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while len(keys) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                keys.append(msg.key().decode())
    finally:
        consumer.close()
    return keys


def create_topic(topic: str, **config: str) -> None:
    admin = admin_client()
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)])
    for future in futures.values():
        future.result(timeout=30)


@pytest.mark.parametrize("size", [LIMIT + 100_000, 5 * LIMIT])
def test_rows_too_large_for_the_producer_are_dead_lettered_and_the_rest_published(isolated_pipeline, size):
    ids = [str(i) for i in range(1, 10)]
    bad = {"3", "7"}
    for entity_id in ids:
        outbox_row(entity_id, incompressible(size) if entity_id in bad else "ok")
    # Small batches: the bad rows sit mid-batch and the rows behind them come in later batches.
    relay = OutboxRelay(batch_size=4)
    relay.drain()

    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists(), "outbox stuck"
    letters = {d.entity_id: d for d in DeadLetter.objects.all()}
    assert set(letters) == bad
    for entity_id, letter in letters.items():
        assert letter.source == DeadLetter.Source.OUTBOX and letter.reason == DeadLetter.Reason.TOO_LARGE
        assert letter.status == DeadLetter.Status.PENDING and letter.partition is None and letter.offset is None
        assert letter.topic == topic_for("product") and bytes(letter.key) == entity_id.encode()
        assert "too large" in letter.error.lower() or "MSG_SIZE_TOO_LARGE" in letter.error
        event = json.loads(bytes(letter.raw_value))
        assert event["entity_id"] == entity_id and len(event["payload"]["description"]) == size // 2 * 2
        assert letter.event_id == str(OutboxEvent.objects.get(aggregate_id=entity_id).event_id)
    assert sorted(keys_in_topic(topic_for("product"), len(ids) - len(bad)), key=int) == [i for i in ids if i not in bad]
    # A later write is published too: nothing waits behind the dead letters.
    outbox_row("10")
    relay.drain()
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


def test_row_the_broker_refuses_is_dead_lettered_and_replayable_once_fixed(isolated_pipeline, operator_api):
    topic = topic_for("product")
    create_topic(topic, **{"max.message.bytes": "4096"})
    for entity_id in ("1", "2", "3"):
        outbox_row(entity_id, incompressible(20_000) if entity_id == "2" else "ok")
    OutboxRelay(batch_size=10).drain()

    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    letter = DeadLetter.objects.get()
    assert (letter.entity_id, letter.reason, letter.source) == ("2", "too_large", "outbox")
    assert "broker refused" in letter.error
    assert sorted(keys_in_topic(topic, 2)) == ["1", "3"]

    # Visible in the API and the console like the consumer's dead letters.
    listed = operator_api.get("/api/v1/dead-letters/?source=outbox").json()["results"]
    assert [d["id"] for d in listed] == [letter.pk] and listed[0]["source"] == "outbox"

    # The operator raises the topic's limit, then replays: the original bytes reach the topic.
    admin = admin_client()
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "1048588", incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    response = operator_api.post(f"/api/v1/dead-letters/{letter.pk}/replay/")
    assert response.status_code == 200, response.content
    assert response.json() == {"replayed": 1}
    assert sorted(keys_in_topic(topic, 3)) == ["1", "2", "3"]


def test_replay_of_a_still_too_large_letter_fails_cleanly(isolated_pipeline, operator_api):
    outbox_row("1", incompressible(1_200_000))
    OutboxRelay().drain()
    letter = DeadLetter.objects.get()
    response = operator_api.post(f"/api/v1/dead-letters/{letter.pk}/replay/")
    assert response.status_code == 503 and "not acknowledged" in response.json()["detail"]
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.PENDING


def test_console_lists_outbox_dead_letters(isolated_pipeline, admin_client):
    outbox_row("1", incompressible(1_200_000))
    OutboxRelay().drain()
    letter = DeadLetter.objects.get()
    page = admin_client.get("/dead-letters/?source=outbox&status=pending")
    assert page.status_code == 200 and b"never published" in page.content
    detail = admin_client.get(f"/dead-letters/{letter.pk}/")
    assert detail.status_code == 200 and b"Outbox relay" in detail.content


def test_unreachable_broker_retries_and_dead_letters_nothing(isolated_pipeline):
    for entity_id in ("1", "2", "3"):
        outbox_row(entity_id)
    relay = OutboxRelay(delivery_timeout_s=5)
    relay.producer = build_producer(**{"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 2000})
    relay.assume_topic_exists(topic_for("product"))  # skip the admin call to the missing broker
    assert relay.relay_once() == 0
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 3
    assert not DeadLetter.objects.exists()
    assert OutboxRelay().drain() == 3
    assert not DeadLetter.objects.exists()


@pytest.mark.parametrize("payload", [{"price": float("nan")}, {"tags": {"a", "b"}}, {"when": object()}])
def test_rows_that_cannot_be_encoded_become_unserialisable_dead_letters(isolated_pipeline, payload):
    row = outbox_row("1")
    row.payload = payload  # only in memory: what a buggy writer could hand the relay
    with pytest.raises((TypeError, ValueError)):
        encode(row)
    dead_letter([Unpublishable(row, topic_for("product"), DeadLetter.Reason.UNSERIALISABLE, "cannot encode")])
    letter = DeadLetter.objects.get()
    assert letter.reason == "unserialisable" and letter.event_id == str(row.event_id)
    assert b'"entity_id":"1"' in bytes(letter.raw_value)  # readable for the operator
    assert OutboxEvent.objects.get(pk=row.pk).published_at is not None


def test_topics_and_connectors_accept_what_the_producers_may_send(isolated_pipeline):
    from indexing.control import connectors
    from indexing.core.producer import producer_config
    from indexing.core.topics import ensure_topic

    topic = topic_for("product")
    ensure_topic(topic)
    admin = admin_client()  # keep a reference: a collected client cancels its futures
    described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    config = next(iter(described.values())).result(timeout=30)
    assert int(config["max.message.bytes"].value) == LIMIT == producer_config()["message.max.bytes"]
    for connector in (connectors.outbox_connector_config("s1"), connectors.table_connector_config("s2", "p")):
        # One oversized record is skipped or dead-lettered downstream, never a stopped connector.
        assert connector["producer.override.max.request.size"] == str(LIMIT)
        assert connector["topic.creation.default.max.message.bytes"] == str(LIMIT)
        assert connector["errors.tolerance"] == "all"
