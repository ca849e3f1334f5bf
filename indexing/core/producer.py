"""The Kafka producer every publisher of events uses (relay, replay, repairs)."""

from __future__ import annotations

from confluent_kafka import Producer
from django.conf import settings
from indexing.conf import searchsync_settings


def producer_config(**overrides) -> dict:
    config = {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        # Idempotence gives acks=all and in-order, de-duplicated retries per partition.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # Every produce gets a definite delivery report within this time, so a
        # publisher never waits on a stopped broker for longer.
        "message.timeout.ms": 30_000,
        # Java clients (Kafka Connect, Debezium) hash keys with murmur2: the same
        # entity lands in the same partition whichever publisher sent it.
        "partitioner": "murmur2_random",
        # Bigger messages are refused locally (MSG_SIZE_TOO_LARGE): the relay dead-letters them.
        "message.max.bytes": searchsync_settings.MAX_MESSAGE_BYTES,
    }
    config.update(overrides)
    return config


def build_producer(**overrides) -> Producer:
    return Producer(producer_config(**overrides))
