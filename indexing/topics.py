"""Kafka topics: one per aggregate type, keyed by entity id."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings


def admin_client() -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})


def topic_for(aggregate_type: str) -> str:
    return f"{settings.SEARCHSYNC['TOPIC_PREFIX']}{aggregate_type}"


def ensure_topic(topic: str, partitions: int | None = None, timeout: float = 15.0) -> None:
    partitions = partitions or settings.SEARCHSYNC["TOPIC_PARTITIONS"]
    admin = admin_client()  # keep a reference: a collected client cancels its pending futures
    # The topic accepts whatever the publishers may send (see MAX_MESSAGE_BYTES).
    config = {"max.message.bytes": str(settings.SEARCHSYNC["MAX_MESSAGE_BYTES"])}
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config)],
                                           operation_timeout=timeout, request_timeout=timeout)
    for future in futures.values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
