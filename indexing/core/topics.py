"""Kafka topics: one per aggregate type, keyed by entity id."""

from __future__ import annotations

import logging
import threading

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

from indexing.core.backoff import backoff_delay
from indexing.conf import searchsync_settings

log = logging.getLogger(__name__)


def admin_client() -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})


def topic_for(aggregate_type: str) -> str:
    return f"{searchsync_settings.TOPIC_PREFIX}{aggregate_type}"


def topic_config() -> dict:
    """Per-topic settings from configuration. With replication factor 3 and min.insync.replicas 2,
    an ``acks=all`` produce is acknowledged once two brokers hold it: one broker can restart or
    die without losing an acknowledged event or stopping the producers."""
    # The topic accepts whatever the publishers may send (see MAX_MESSAGE_BYTES).
    config = {"max.message.bytes": str(searchsync_settings.MAX_MESSAGE_BYTES)}
    if searchsync_settings.TOPIC_MIN_INSYNC_REPLICAS:
        config["min.insync.replicas"] = str(searchsync_settings.TOPIC_MIN_INSYNC_REPLICAS)
    return config


def ensure_topic(topic: str, partitions: int | None = None, timeout: float = 15.0) -> None:
    partitions = partitions or searchsync_settings.TOPIC_PARTITIONS
    admin = admin_client()  # keep a reference: a collected client cancels its pending futures
    config = topic_config()
    replication = searchsync_settings.TOPIC_REPLICATION_FACTOR
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=replication,
                                            config=config)],
                                           operation_timeout=timeout, request_timeout=timeout)
    for future in futures.values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def wait_for_topic(topic: str, stop: threading.Event, *, timeout: float = 10.0, base_s: float = 1.0,
                   cap_s: float = 30.0) -> bool:
    """``ensure_topic`` until it succeeds or ``stop`` is set; True once the topic exists.

    At start-up the broker may simply not be up yet: that is a wait, not a crash."""
    attempt = 0
    while not stop.is_set():
        try:
            ensure_topic(topic, timeout=timeout)
            if attempt:
                log.info("topic %s ready after %d attempt(s)", topic, attempt + 1)
            return True
        except Exception as exc:  # any broker trouble (timeout, transport) means: try again later
            delay = backoff_delay(attempt, base_s, cap_s)
            log.warning("topic %s not ready (%s: %s); retrying in %.1fs", topic, type(exc).__name__, exc, delay)
            attempt += 1
            stop.wait(delay)
    return False
