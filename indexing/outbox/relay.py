"""The outbox relay: committed outbox rows → Kafka, one topic per aggregate.

It wakes on a Redis wake-up pushed after commit by ``outbox.emit``
(``relay_wakeup``; nothing in the writers' commit path) and polls as a fallback. Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so several relays
share the work without sending a row twice in the normal case; a row is
marked published only after the broker acknowledged it (idempotent producer,
``acks=all``). A stopped Kafka leaves rows unmarked and waiting; application
transactions only insert outbox rows and never wait for the relay. A row that
can never be published (too large, rejected, unencodable) becomes an outbox
dead letter (``relay_dead_letters``) instead of blocking the rows behind it, and
so does a row of an aggregate type no blueprint declares, which no consumer would
ever read (``declared_aggregates``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

from confluent_kafka import KafkaException
from django.db import close_old_connections, transaction
from django.utils import timezone

from indexing.core import liveness, stats
from indexing.core.backoff import backoff_delay
from indexing.models import DeadLetter, OutboxEvent
from indexing.core.producer import build_producer
from indexing.outbox.declared_aggregates import DeclaredAggregates, unknown_aggregate
from indexing.outbox.relay_dead_letters import Unpublishable, dead_letter, encode, permanent_reason
from indexing.outbox.wakeup import take_wakeup, wait_for_wakeup
from indexing.core.topics import ensure_topic, topic_for
from indexing.conf import searchsync_settings

log = logging.getLogger(__name__)

# While probing, how often the relay looks for a Redis wake-up (a non-blocking LPOP).
WAKEUP_CHECK_S = 0.01


class OutboxRelay:
    """Publishes the outbox of one database: ``using`` is its Django alias (a source database's,
    ``source_<name>``, or ``default``, searchsync's own)."""

    def __init__(self, batch_size: int | None = None, poll_s: float | None = None, delivery_timeout_s: float = 35.0,
                 using: str = "default", idle_probe_ms: int | None = None, source: str | None = None):
        self.batch_size = batch_size or searchsync_settings.RELAY_BATCH_SIZE
        self.poll_s = poll_s if poll_s is not None else searchsync_settings.RELAY_POLL_S
        self.idle_probe_ms = idle_probe_ms if idle_probe_ms is not None else searchsync_settings.RELAY_IDLE_PROBE_MS
        self.delivery_timeout_s = delivery_timeout_s
        self.using = using
        self.source = source or using
        self.producer = build_producer()
        self._known_topics: set[str] = set()
        self.aggregates = DeclaredAggregates()
        self.relay_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def assume_topic_exists(self, topic: str) -> None:
        """Produce to ``topic`` without creating it first through the admin API, whose call waits for a
        broker that does not answer where only the producer's own outcome matters."""
        self._known_topics.add(topic)

    @property
    def outbox(self):
        return OutboxEvent.objects.using(self.using)

    def relay_once(self) -> int:
        """Publish up to one batch of unpublished rows; return how many left the outbox's unpublished set
        (acknowledged by the broker, or dead-lettered as unpublishable)."""
        with transaction.atomic(using=self.using):
            rows = list(
                self.outbox.select_for_update(skip_locked=True)
                .filter(published_at__isnull=True)
                .order_by("created_at", "event_id")[: self.batch_size]
            )
            if not rows:
                return 0
            acked, failed, unpublishable = self._publish(rows)
            if acked:
                self.outbox.filter(event_id__in=acked).update(published_at=timezone.now())
            dead = dead_letter(unpublishable, using=self.using)
        retrying = len(failed)
        if dead:
            log.error("relay: %d row(s) cannot be published and became outbox dead letters (%s)",
                      dead, unpublishable[0].error)
        if retrying:
            log.warning("relay: %d of %d rows not acknowledged (%s); they stay in the outbox",
                        retrying, len(rows), next(iter(failed.values())))
            self._renew_producer()
        stats.incr("relay", relayed=len(acked), failed=retrying, dead_lettered=dead)
        return len(acked) + dead

    def _publish(self, rows: list[OutboxEvent]) -> tuple[list, dict, list[Unpublishable]]:
        """Send the rows; return the acknowledged event ids, transient failures, and rows that can never be sent."""
        acked: list = []
        failed: dict = {}

        def on_delivery(event_id):
            def callback(err, _msg):
                if err is None:
                    acked.append(event_id)
                else:
                    failed[event_id] = err

            return callback

        sent: dict = {}
        unpublishable: list[Unpublishable] = []
        undeclared = self.aggregates.undeclared(row.aggregate_type for row in rows)
        for row in rows:
            topic = topic_for(row.aggregate_type)
            if row.aggregate_type in undeclared:
                unpublishable.append(unknown_aggregate(row, topic))
                continue
            if topic not in self._known_topics:
                ensure_topic(topic)
                self._known_topics.add(topic)
            try:
                key, value = encode(row)
            except (TypeError, ValueError) as exc:
                unpublishable.append(Unpublishable(row, topic, DeadLetter.Reason.UNSERIALISABLE, str(exc)))
                continue
            problem = self._produce(topic, key, value, on_delivery(row.event_id))
            if problem is not None:
                unpublishable.append(Unpublishable(row, topic, problem[0], problem[1], value))
            else:
                sent[row.event_id] = (row, topic, value)
        # Every message gets a report within message.timeout.ms, success or failure.
        self.producer.flush(self.delivery_timeout_s)
        for event_id in [e for e, err in failed.items() if permanent_reason(err) is not None]:
            # The broker refuses a whole record batch for one bad message in it, so the others
            # may be innocent: only a message refused again when sent alone is dead-lettered.
            row, topic, value = sent[event_id]
            del failed[event_id]
            problem = self._produce(topic, row.aggregate_id.encode(), value, on_delivery(event_id))
            if problem is None:
                self.producer.flush(self.delivery_timeout_s)
                err = failed.get(event_id)
                if err is None or permanent_reason(err) is None:
                    continue  # acknowledged now, or a transient failure the next round retries
                del failed[event_id]
                problem = permanent_reason(err), f"broker refused the message ({len(value)} bytes): {err}"
            unpublishable.append(Unpublishable(row, topic, *problem, value))
        return acked, failed, unpublishable

    def _renew_producer(self) -> None:
        """Start the next round with a new producer. After messages timed out across a broker
        restart, librdkafka's idempotent producer was seen to time out every later message too
        (a partition leader it no longer found, an epoch it never bumped), for minutes, although
        the broker was back. The unacknowledged rows are still in the outbox: a new producer
        (new producer id, fresh metadata) sends them again, in order. Anything the old one still
        held is purged first, so that it cannot land after them."""
        old = self.producer
        try:
            old.purge()
            old.flush(0)
        except Exception as exc:  # a producer in a fatal state may refuse even this
            log.debug("purging the old producer failed: %s", exc)
        self.producer = build_producer()

    def _produce(self, topic: str, key: bytes, value: bytes, callback) -> tuple[str, str] | None:
        """Hand one message to the producer; (reason, error) if it can never be sent, None if queued.

        Transient errors raise: the whole round is retried, the rows stay unpublished.
        """
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, on_delivery=callback)
                return None
            except BufferError:
                self.producer.poll(0.1)  # local queue full: let deliveries drain
            except KafkaException as exc:
                reason = permanent_reason(exc.args[0])
                if reason is None:
                    raise
                return reason, f"producer refused the message ({len(value)} bytes): {exc.args[0]}"

    def drain(self, max_rounds: int = 1_000_000) -> int:
        total = 0
        for _ in range(max_rounds):
            n = self.relay_once()
            total += n
            if n < self.batch_size:
                break
        return total

    # -- long-running loop ---------------------------------------------------
    def _wait_for_wakeup(self) -> None:
        if self.idle_probe_ms <= 0:
            wait_for_wakeup(self.poll_s, using=self.using)
            return
        # Writers that cannot push a wake-up (SQL callers of searchsync_emit, any language) are found
        # by a cheap probe at a short interval instead: no LISTEN/NOTIFY, which would serialise their
        # commits. The Redis wake-up of Python writers is taken without blocking, every few ms:
        # Redis ends a short BLPOP only on its own clock tick (100 ms at its default hz), too coarse.
        step = self.idle_probe_ms / 1000
        now = time.monotonic()
        deadline, next_probe = now + self.poll_s, now + step
        while now < deadline:
            if take_wakeup(self.using):
                return
            if now >= next_probe:
                if self._unpublished_exist():
                    return
                next_probe = now + step
            time.sleep(max(0.0, min(WAKEUP_CHECK_S, next_probe - now, deadline - now)))
            now = time.monotonic()

    def _unpublished_exist(self) -> bool:
        """One descent of the partial index of unpublished rows. Rows another relay holds count too:
        then this relay's next round finds nothing, and it probes again one interval later."""
        try:
            return self.outbox.filter(published_at__isnull=True).exists()
        except Exception as exc:  # the round that follows reports a real database problem
            log.debug("relay probe failed: %s", exc)
            return True

    def run(self, stop: threading.Event) -> None:
        log.info("outbox relay of %s started (batch %d, poll %.1fs, idle probe %d ms)", self.using,
                 self.batch_size, self.poll_s, self.idle_probe_ms)
        try:
            self._run(stop)
        finally:
            try:
                liveness.relay_gone(self.relay_id)
            except Exception:
                pass

    def _beat(self) -> None:
        try:
            liveness.relay_beat(self.relay_id, self.source)
        except Exception as exc:  # liveness reporting must never stop the relay
            log.debug("could not publish the relay heartbeat: %s", exc)

    def _run(self, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            self._beat()
            try:
                close_old_connections()
                published = self.relay_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("relay round failed")
                stop.wait(backoff_delay(failures, 0.5, 30.0))
                continue
            if published < self.batch_size:
                self._wait_for_wakeup()
        self.producer.flush(self.delivery_timeout_s)


def clean_published(retention: timedelta | None = None, batch: int = 10_000, using: str = "default") -> int:
    """Delete rows published longer ago than the retention window from one database's outbox, in bounded batches."""
    retention = retention or timedelta(hours=searchsync_settings.OUTBOX_RETENTION_HOURS)
    cutoff = timezone.now() - retention
    outbox = OutboxEvent.objects.using(using)
    # With Debezium publishing, rows are never marked: the WAL carried them, age is what counts.
    old = (outbox.filter(created_at__lt=cutoff)
           if searchsync_settings.PUBLISHER == "debezium"
           else outbox.filter(published_at__lt=cutoff))
    deleted = 0
    while True:
        ids = list(old.values_list("event_id", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += outbox.filter(event_id__in=ids).delete()[0]
