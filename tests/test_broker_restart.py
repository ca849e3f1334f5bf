"""A Kafka broker restart under writes: the broker of this drill (its own, never the shared one)
stops for 30 s while the relay and the consumer run, then comes back. Application writes never
wait; the outbox holds what the broker could not take; the idempotent, acks=all producer and the
consumer ride through; indexing resumes by itself; the index never goes back to an older version
on the way and equals the database at the end, with nothing dead-lettered.

Part of ``make test-cluster`` (marked ``cluster``): it runs against the search cluster there.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, TopicPartition

from indexing.models import DeadLetter, OutboxEvent
from indexing.core.producer import producer_config
from indexing.core.topics import topic_for
from tests.drills import Started, SteadyWrites, report
from tests.helpers import devstack, pipeline, wait_converged, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

RESTART_KAFKA = {"DEVSTACK_KAFKA_NAME": "kafka-restart", "DEVSTACK_KAFKA_PORT": "19392",
                 "DEVSTACK_KAFKA_CONTROLLER_PORT": "19393", "DEVSTACK_KAFKA_HEAP_OPTS": "-Xms256m -Xmx512m"}
BROKER_AWAY_S = float(os.environ.get("SEARCHSYNC_DRILL_BROKER_AWAY_S", "30"))


def broker(action: str) -> None:
    env = RESTART_KAFKA if action == "up" else {"DEVSTACK_KAFKA_NAME": RESTART_KAFKA["DEVSTACK_KAFKA_NAME"]}
    devstack(action, "kafka", env=env)


@pytest.fixture
def restart_broker(settings):
    broker("up")
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{RESTART_KAFKA['DEVSTACK_KAFKA_PORT']}"
    yield
    broker("down")  # the drill's own broker: stopped like test_supervision's


class VersionWatch:
    """Reads the index every half second and remembers, per document, the highest version seen:
    a later read of a lower version would be the index going back in time."""

    def __init__(self, engine, index: str):
        self.engine, self.index = engine, index
        self.highest: dict[str, int] = {}
        self.regressions: list[tuple[str, int, int]] = []
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.5):
            try:
                self.engine.refresh(self.index)
                hits = list(self.engine.scan(self.index, source=False))
            except Exception:  # the drill does not take the search cluster away; a blip is not a finding
                continue
            self.reads += 1
            for hit in hits:
                seen = self.highest.get(hit["_id"], 0)
                if hit["_version"] < seen:
                    self.regressions.append((hit["_id"], seen, hit["_version"]))
                self.highest[hit["_id"]] = max(seen, hit["_version"])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)


def topic_order(topic: str) -> tuple[int, int, int]:
    """(messages, exact duplicates, regressions) of the whole topic: a regression is a message whose
    version is below one already in its partition for the same key."""
    from django.conf import settings

    consumer = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": f"audit-{time.time()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        seen: dict = defaultdict(set)
        highest: dict = {}
        messages = duplicates = regressions = 0
        remaining = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            messages += 1
            key = (msg.partition(), msg.key())
            version = json.loads(msg.value())["version"]
            if version in seen[key]:
                duplicates += 1
            elif version < highest.get(key, 0):
                regressions += 1
            seen[key].add(version)
            highest[key] = max(highest.get(key, 0), version)
            if msg.offset() >= ends[msg.partition()] - 1:
                remaining.discard(msg.partition())
        return messages, duplicates, regressions
    finally:
        consumer.close()


def test_broker_stopped_30s_and_restarted_under_writes_loses_nothing(restart_broker, products_blueprint, engine):
    config = producer_config()
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    started = Started()
    live = products_blueprint.live_index().name
    with pipeline(products_blueprint), VersionWatch(engine, live) as watch:
        with SteadyWrites(seed=18) as writes:
            time.sleep(5)
            broker("down")
            stopped_at = time.monotonic()
            writes_before = writes.writes
            time.sleep(BROKER_AWAY_S)
            writes_while_down = writes.writes - writes_before
            waiting = OutboxEvent.objects.filter(published_at__isnull=True).count()
            broker("up")
            away = time.monotonic() - stopped_at
            time.sleep(5)
        # indexing resumes by itself: no restart of the relay or the consumer
        wait_converged(engine, live, writes.deleted, timeout=180)
        wait_until(lambda: not OutboxEvent.objects.filter(published_at__isnull=True).exists(), timeout=60,
                   message="outbox drained")
    messages, duplicates, regressions = topic_order(topic_for(products_blueprint.aggregate_type))
    figures = report("broker-restart", writes, products_blueprint, engine, live, started, broker_away_s=round(away, 1),
                     writes_while_down=writes_while_down, outbox_waiting_at_restart=waiting,
                     topic_messages=messages, topic_duplicates=duplicates, topic_regressions=regressions,
                     index_reads=watch.reads, index_regressions=len(watch.regressions))
    assert writes_while_down > BROKER_AWAY_S * 10  # application writes never waited on the broker
    assert waiting > 0  # the outbox held them meanwhile
    assert figures["drift"] == 0
    assert figures["dead_letters"] == 0, list(DeadLetter.objects.values_list("reason", "error")[:5])
    assert not watch.regressions, watch.regressions[:5]
    assert watch.reads > 10
    assert regressions == 0
