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
from collections import Counter
from datetime import timedelta

from confluent_kafka import KafkaException
from django.db import connections, transaction
from django.utils import timezone

from indexing.core import liveness
from indexing.core.backoff import backoff_delay
from indexing.models import DeadLetter, OutboxEvent
from indexing.core.producer import build_producer
from indexing.outbox.declared_aggregates import DeclaredAggregates, unknown_aggregate
from indexing.outbox.linger import Linger
from indexing.outbox.relay_dead_letters import Unpublishable, dead_letter, encode, permanent_reason
from indexing.core.db_hygiene import ConnectionHygiene
from indexing.outbox.wakeup import wait_for_wakeup
from indexing.core.topics import ensure_topic, topic_for
from indexing.conf import searchsync_settings

log = logging.getLogger(__name__)

BEAT_INTERVAL_S = 1.0
QUIET_AFTER_S = 1.0  # without rows for this long, the idle probe slows down (RELAY_IDLE_PROBE_MAX_MS)



class OutboxRelay:
    """Publishes the outbox of one database: ``using`` is its Django alias (a source database's,
    ``source_<name>``, or ``default``, searchsync's own)."""

    def __init__(self, batch_size: int | None = None, poll_s: float | None = None, delivery_timeout_s: float = 35.0,
                 using: str = "default", idle_probe_ms: int | None = None, source: str | None = None):
        self.batch_size = batch_size or searchsync_settings.RELAY_BATCH_SIZE
        self.poll_s = poll_s if poll_s is not None else searchsync_settings.RELAY_POLL_S
        self.idle_probe_ms = idle_probe_ms if idle_probe_ms is not None else searchsync_settings.RELAY_IDLE_PROBE_MS
        self.idle_probe_max_ms = max(self.idle_probe_ms, searchsync_settings.RELAY_IDLE_PROBE_MAX_MS)
        self.linger = Linger(searchsync_settings.RELAY_LINGER_MS / 1000, searchsync_settings.RELAY_LINGER_MIN_MS / 1000,
                             searchsync_settings.RELAY_LINGER_EVENTS)
        self._rows_at = float("-inf")  # when a round last found rows
        self.delivery_timeout_s = delivery_timeout_s
        self.using = using
        self.source = source or using
        self.producer = build_producer()
        self._known_topics: set[str] = set()
        self.aggregates = DeclaredAggregates()
        self.relay_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._beat_at = float("-inf")
        self._counts: Counter = Counter()  # since the last beat, which publishes them
        table = OutboxEvent._meta.db_table
        self._columns = [f.attname for f in OutboxEvent._meta.concrete_fields]
        self._converters = [(i, f) for i, f in enumerate(OutboxEvent._meta.concrete_fields) if hasattr(f, "from_db_value")]
        self._claim_sql = (f"SELECT {', '.join(f.column for f in OutboxEvent._meta.concrete_fields)} FROM {table} "
                           "WHERE published_at IS NULL ORDER BY created_at, event_id LIMIT %s FOR UPDATE SKIP LOCKED")
        self._mark_sql = f"UPDATE {table} SET published_at = %s WHERE event_id = ANY(%s::uuid[])"
        self._probe_sql = f"SELECT 1 FROM {OutboxEvent._meta.db_table} WHERE published_at IS NULL LIMIT 1"

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
            # Plain SQL for the two statements of every round: at everyday rates a round carries a
            # few rows, and building the ORM's statements cost more CPU than running them.
            connection = connections[self.using]
            with connection.cursor() as cur:
                cur.execute(self._claim_sql, [self.batch_size])
                rows = [OutboxEvent.from_db(self.using, self._columns, self._converted(values, connection))
                        for values in cur.fetchall()]
            if not rows:
                return 0
            acked, failed, unpublishable = self._publish(rows)
            if acked:
                with connections[self.using].cursor() as cur:
                    # The ids as one array literal: binding them one by one cost more than the UPDATE.
                    cur.execute(self._mark_sql, [timezone.now(), "{" + ",".join(str(i) for i in acked) + "}"])
            dead = dead_letter(unpublishable, using=self.using)
        retrying = len(failed)
        if dead:
            log.error("relay: %d row(s) cannot be published and became outbox dead letters (%s)",
                      dead, unpublishable[0].error)
        if retrying:
            log.warning("relay: %d of %d rows not acknowledged (%s); they stay in the outbox",
                        retrying, len(rows), next(iter(failed.values())))
            self._renew_producer()
        self._counts.update(relayed=len(acked), failed=retrying, dead_lettered=dead)
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
        # Not a running relay: its counts without a heartbeat, which would show it live for a minute.
        try:
            liveness.add_relay_counts(self._take_counts())
        except Exception as exc:
            log.debug("could not publish the relay counters: %s", exc)
        return total

    def _take_counts(self) -> Counter:
        counts, self._counts = self._counts, Counter()
        return counts

    # -- long-running loop ---------------------------------------------------
    def _converted(self, values, connection) -> list:
        """A row's values as the ORM would load them (the JSON payload decoded)."""
        values = list(values)
        for i, field in self._converters:
            if values[i] is not None:
                values[i] = field.from_db_value(values[i], None, connection)
        return values

    def _wait_for_wakeup(self, stop: threading.Event) -> None:
        if self.idle_probe_ms <= 0:
            wait_for_wakeup(self.poll_s, using=self.using)
            return
        # Writers that cannot push a wake-up (SQL callers of searchsync_emit, any language) are found
        # by a cheap probe at a short interval instead: no LISTEN/NOTIFY, which would serialise their
        # commits. Between probes the relay blocks on the Redis wake-up (BLPOP), which returns as soon
        # as a Python writer pushes one: one Redis call and one probe per interval while idle, not a
        # poll of Redis every few ms. (Redis 7 ends a short BLPOP 10-20 ms after its timeout.)
        # The probe is the poll: while it finds nothing, no round runs (a round is a transaction of
        # three statements, each a wake-up of this thread), only the heartbeat once a second.
        while not stop.is_set():
            if wait_for_wakeup(self._probe_interval(), using=self.using):
                return
            if self._unpublished_exist():
                return
            self._beat()

    def _probe_interval(self) -> float:
        """RELAY_IDLE_PROBE_MS while rows came within the last second, RELAY_IDLE_PROBE_MAX_MS after:
        a quiet outbox is probed a few times a second, which costs next to nothing."""
        quiet = time.monotonic() - self._rows_at
        return (self.idle_probe_ms if quiet < QUIET_AFTER_S else self.idle_probe_max_ms) / 1000

    def _linger(self, started: float, stop: threading.Event) -> None:
        """Rows trickle in: start the next round a linger after this one started. At everyday rates
        each round then carries several events, and so does the consumer's batch behind it: the
        cost of a round (three statements, a produce, a flush) is paid per few events, not per event.
        The linger shortens as the rate rises (``linger.py``)."""
        pause = started + self.linger.seconds - time.monotonic()
        if pause > 0:
            stop.wait(pause)

    def _unpublished_exist(self) -> bool:
        """One descent of the partial index of unpublished rows. Rows another relay holds count too:
        then this relay's next round finds nothing, and it probes again one interval later. Plain SQL:
        the ORM would rebuild the same statement 20 times a second."""
        try:
            with connections[self.using].cursor() as cur:
                cur.execute(self._probe_sql)
                return cur.fetchone() is not None
        except Exception as exc:  # the round that follows reports a real database problem
            log.debug("relay probe failed: %s", exc)
            return True

    def run(self, stop: threading.Event) -> None:
        log.info("outbox relay of %s started (batch %d, poll %.1fs, idle probe %d-%d ms, linger %d-%d ms for %d events)",
                 self.using, self.batch_size, self.poll_s, self.idle_probe_ms, self.idle_probe_max_ms,
                 self.linger.shortest_s * 1000, self.linger.longest_s * 1000, self.linger.events)
        try:
            self._run(stop)
        finally:
            try:
                liveness.add_relay_counts(self._take_counts())
                liveness.relay_gone(self.relay_id)
            except Exception:
                pass

    def _beat(self) -> None:
        # Once a second is plenty for a heartbeat read against a minute's TTL; not once per round.
        # The round counters ride on it: at everyday rates a Redis call per round was a seventh of
        # the relay's CPU.
        now = time.monotonic()
        if now - self._beat_at < BEAT_INTERVAL_S:
            return
        self._beat_at = now
        counts = self._take_counts()
        try:
            liveness.relay_beat(self.relay_id, self.source, counts)
        except Exception as exc:  # liveness reporting must never stop the relay
            self._counts.update(counts)  # counted again at the next beat
            log.debug("could not publish the relay heartbeat: %s", exc)

    def _run(self, stop: threading.Event) -> None:
        failures = 0
        hygiene = ConnectionHygiene()
        while not stop.is_set():
            self._beat()
            started = time.monotonic()
            try:
                hygiene()
                published = self.relay_once()
                failures = 0
            except Exception:
                hygiene.reset()
                failures += 1
                log.exception("relay round failed")
                stop.wait(backoff_delay(failures, 0.5, 30.0))
                continue
            if not published:
                self.linger.reset()
                self._wait_for_wakeup(stop)
                continue
            self.linger.after_round(published, started)
            if published >= self.batch_size:
                continue  # a backlog: the next round at once
            self._rows_at = time.monotonic()
            self._linger(started, stop)
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
