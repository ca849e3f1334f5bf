"""The indexing consumer: one Kafka consumer group per blueprint.

The commit rule: offsets of a batch are committed only after every message
in it is resolved (indexed, stale, superseded or dead-lettered), and only for
partitions this consumer still owns. A crash anywhere before the commit makes
the next owner replay the batch; external versions make that replay harmless
(at-least-once delivery + idempotent writes = effectively once).

Rebalances can only happen inside poll calls. Batches are committed before the
next poll, so a revocation between batches has nothing left to flush; during
a wait inside a batch (retry or outage) the consumer keeps polling with its
partitions paused, and commits afterwards only what it still owns. Lost
partitions are never committed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition
from django.conf import settings
from django.db import close_old_connections

from . import stats
from .backoff import backoff_delay
from .backpressure import BackpressureController
from .contracts import Incoming
from .engines import SearchEngine, get_engine
from .models import IndexBlueprint
from .processor import BatchProcessor
from .sink import BulkSink
from .topics import wait_for_topic

log = logging.getLogger(__name__)


class ConsumerStopping(Exception):
    """Raised inside a wait when the consumer is asked to stop: the batch is abandoned, not committed."""


def consumer_config(group_id: str, **overrides) -> dict:
    config = {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        "max.poll.interval.ms": 300_000,
        "enable.partition.eof": False,
    }
    config.update(overrides)
    return config


def commit_offsets(messages: list[Incoming], owned: set[tuple[str, int]]) -> list[TopicPartition]:
    """Next offsets to commit for a fully resolved batch, for partitions still owned."""
    highest: dict[tuple[str, int], int] = {}
    for msg in messages:
        key = (msg.topic, msg.partition)
        highest[key] = max(highest.get(key, -1), msg.offset)
    return [TopicPartition(t, p, off + 1) for (t, p), off in sorted(highest.items()) if (t, p) in owned]


class IndexingConsumer:
    def __init__(self, blueprint: IndexBlueprint, engine: SearchEngine | None = None, *,
                 batch_size: int | None = None, batch_wait_ms: int | None = None, consumer_overrides: dict | None = None):
        cfg = settings.SEARCHSYNC
        self.blueprint = blueprint
        self.engine = engine or get_engine()
        self.batch_wait_s = (batch_wait_ms or cfg["BATCH_WAIT_MS"]) / 1000
        self.consumer_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.backpressure = BackpressureController(
            self.engine,
            max_batch=batch_size or cfg["BATCH_SIZE"],
            min_batch=min(cfg["MIN_BATCH_SIZE"], batch_size or cfg["BATCH_SIZE"]),
            queue_ratio=cfg["BACKPRESSURE_QUEUE_RATIO"],
            check_interval_s=cfg["BACKPRESSURE_CHECK_S"],
        )
        self.sink = BulkSink.from_settings(
            self.engine,
            chunk_size=batch_size,
            wait=self._idle,
            on_throttled=self.backpressure.on_throttled,
            on_unavailable=self.backpressure.on_unavailable,
            on_not_ready=lambda n: self.backpressure.on_unavailable("cluster not ready"),
        )
        self.processor = BatchProcessor(blueprint, self.sink)
        self.consumer = Consumer(consumer_config(blueprint.consumer_group, **(consumer_overrides or {})))
        self._stop = threading.Event()
        self._last_state = 0.0
        self.batches = 0

    # -- rebalance callbacks -------------------------------------------------
    def _on_assign(self, consumer, partitions):
        log.info("%s assigned %s", self.blueprint.name, [p.partition for p in partitions])

    def _on_revoke(self, consumer, partitions):
        log.info("%s revoked %s", self.blueprint.name, [p.partition for p in partitions])

    def _on_lost(self, consumer, partitions):
        log.warning("%s lost %s; their uncommitted work will be replayed by the new owner",
                    self.blueprint.name, [p.partition for p in partitions])

    # -- loop ----------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self, stop: threading.Event | None = None, max_batches: int | None = None) -> None:
        if stop is not None:
            self._stop = stop
        if not wait_for_topic(self.blueprint.topic, self._stop):
            self.consumer.close()
            return
        self.consumer.subscribe([self.blueprint.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        failures = 0
        try:
            while not self._stop.is_set():
                if max_batches is not None and self.batches >= max_batches:
                    break
                pause = self.backpressure.pause_for()
                if pause:
                    self._publish_state(force=True)
                    try:
                        self._idle(pause)
                    except ConsumerStopping:
                        break
                    continue
                batch = self._poll_batch()
                self._publish_state()
                if not batch:
                    continue
                try:
                    close_old_connections()
                    report = self.processor.process(batch)
                except ConsumerStopping:
                    break
                except Exception:
                    failures += 1
                    log.exception("%s: batch of %d failed before it was resolved; it will be retried",
                                  self.blueprint.name, len(batch))
                    self._rewind(batch)
                    try:
                        self._idle(backoff_delay(failures, 0.5, 30.0))
                    except ConsumerStopping:
                        break
                    continue
                failures = 0
                self._commit(batch)
                self.batches += 1
                self.backpressure.on_batch_done(report)
        finally:
            self._close()

    def _poll_batch(self) -> list[Incoming]:
        messages = self.consumer.consume(num_messages=self.backpressure.batch_size, timeout=self.batch_wait_s)
        batch = []
        for m in messages:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                log.warning("%s: consumer error %s", self.blueprint.name, err)
                continue
            batch.append(Incoming(m.topic(), m.partition(), m.offset(), m.key(), m.value()))
        return batch

    def _owned(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def _commit(self, batch: list[Incoming]) -> None:
        offsets = commit_offsets(batch, self._owned())
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # Typically a rebalance took the partitions; the new owner replays them.
            log.warning("%s: commit failed (%s); the batch will be replayed", self.blueprint.name, exc)

    def _rewind(self, batch: list[Incoming]) -> None:
        """Seek back to the first message of a failed batch so it is processed again."""
        first: dict[tuple[str, int], int] = {}
        for msg in batch:
            key = (msg.topic, msg.partition)
            first[key] = min(first.get(key, msg.offset), msg.offset)
        owned = self._owned()
        for (topic, partition), offset in first.items():
            if (topic, partition) in owned:
                try:
                    self.consumer.seek(TopicPartition(topic, partition, offset))
                except KafkaException as exc:
                    log.warning("seek failed: %s", exc)

    def _idle(self, seconds: float) -> None:
        """Wait with partitions paused while still polling, so the group keeps us and rebalances are served."""
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.pause(assignment)
        deadline = time.monotonic() + seconds
        try:
            while True:
                if self._stop.is_set():
                    raise ConsumerStopping()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                msg = self.consumer.poll(min(remaining, 0.5))
                if msg is not None and msg.error() is None:
                    # A partition assigned during the wait is not paused: put the message back.
                    self.consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
                    self.consumer.pause([TopicPartition(msg.topic(), msg.partition())])
                self._publish_state()
        finally:
            assignment = self.consumer.assignment()
            if assignment:
                self.consumer.resume(assignment)

    def _publish_state(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_state < 1.0:
            return
        self._last_state = now
        try:
            stats.publish_state(
                self.blueprint.name,
                self.consumer_id,
                state=self.backpressure.state,
                batch_size=self.backpressure.batch_size,
                queue_ratio=round(self.backpressure.last_reading.queue_ratio, 3),
                pressure=self.backpressure.last_reading.reason,
                partitions=sorted(p for _, p in self._owned()),
                batches=self.batches,
            )
        except Exception as exc:  # the console's view must never stop indexing
            log.debug("could not publish consumer state: %s", exc)

    def _close(self) -> None:
        try:
            stats.clear_state(self.blueprint.name, self.consumer_id)
        except Exception:
            pass
        # No commit here: everything resolved was committed batch by batch.
        self.consumer.close()
