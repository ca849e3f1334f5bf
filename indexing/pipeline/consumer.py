"""The indexing consumer: one Kafka consumer group per blueprint.

The commit rule: offsets of a batch are committed only after every message
in it is resolved (indexed, stale, superseded or dead-lettered), only once
every batch polled before it is resolved too (``commit_order``), and only for
partitions this consumer still owns. A crash anywhere before the commit makes
the next owner replay the batch; external versions make that replay harmless
(at-least-once delivery + idempotent writes = effectively once).

Pipelining: a batch's Python work (decode, validate, build, serialise; ``prepare``) runs on this
thread while earlier batches are being written by bulk threads (``complete``). At most
``BULKS_IN_FLIGHT`` requests are on the wire at once (the sink's gate), and there is one bulk thread
more than that: while one thread resolves its answer, the next batch's request is already sent, so
the node does not wait on our answer handling between two bulks. A finished batch's commit and
figures come after the next batch is submitted. Only this thread touches the Kafka client, through a
``broker.Broker`` (``KafkaBroker`` in production): bulk threads wait out retries with a plain
stop-aware sleep, and this thread, when it has to wait for a bulk for long, polls with its partitions
paused so the group keeps it. A failed batch holds back the commit of every batch after it; all of
them are rewound and processed again.

Rebalances can only happen inside poll calls. A revocation while a batch is
in flight leaves its offsets on the revoked partitions uncommitted (the
commit takes only partitions still owned): the new owner replays them, which
the versions make harmless. Lost partitions are never committed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures

from confluent_kafka import KafkaException, TopicPartition

from indexing.core import pauses, stats
from indexing.core.backoff import backoff_delay
from indexing.pipeline.backpressure import BackpressureController
from indexing.core.db_hygiene import ConnectionHygiene, close_pool_connections
from indexing.pipeline.broker import Broker, KafkaBroker, consumer_config
from indexing.pipeline.commit_order import CommitOrder
from indexing.pipeline.outage import Outage
from indexing.blueprints.contracts import Incoming
from indexing.conf import searchsync_settings
from indexing.engines import SearchEngine, get_engine
from indexing.models import IndexBlueprint
from indexing.pipeline.processor import BatchProcessor
from indexing.pipeline.bulk_sink import BulkSink

log = logging.getLogger(__name__)

# The longest poll while nothing is in flight: each wake-up of an idle consumer costs CPU, and a
# message ends the wait as soon as it is fetched.
IDLE_POLL_S = 0.5
# Figures of batches that follow one another closely are recorded together, this often at most.
RECORD_INTERVAL_S = 0.25


class ConsumerStopping(Exception):
    """Raised inside a wait when the consumer is asked to stop: the batch is abandoned, not committed."""


__all__ = ["ConsumerStopping", "IndexingConsumer", "commit_offsets", "consumer_config"]


def commit_offsets(messages: list[Incoming], owned: set[tuple[str, int]]) -> list[TopicPartition]:
    """Next offsets to commit for a fully resolved batch, for partitions still owned."""
    highest: dict[tuple[str, int], int] = {}
    for msg in messages:
        key = (msg.topic, msg.partition)
        highest[key] = max(highest.get(key, -1), msg.offset)
    return [TopicPartition(t, p, off + 1) for (t, p), off in sorted(highest.items()) if (t, p) in owned]


class IndexingConsumer:
    def __init__(self, blueprint: IndexBlueprint, engine: SearchEngine | None = None, *,
                 batch_size: int | None = None, batch_wait_ms: int | None = None, consumer_overrides: dict | None = None,
                 broker: Broker | None = None, processor: BatchProcessor | None = None,
                 backpressure: BackpressureController | None = None, states=stats, pause_marks=pauses):
        """``broker``, ``processor``, ``backpressure``, ``states`` (the console's consumer states, ``core.stats``)
        and ``pause_marks`` (``core.pauses``) default to the real ones; tests inject their own to run the
        commit logic without services. ``consumer_overrides`` configure the default broker only."""
        cfg = searchsync_settings
        self.blueprint = blueprint
        self.engine = engine or get_engine()
        self.states = states
        self.batch_wait_s = (batch_wait_ms or cfg.BATCH_WAIT_MS) / 1000
        self.consumer_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._hygiene = ConnectionHygiene()
        self.backpressure = backpressure if backpressure is not None else BackpressureController(
            self.engine,
            max_batch=batch_size or cfg.BATCH_SIZE,
            min_batch=min(cfg.MIN_BATCH_SIZE, batch_size or cfg.BATCH_SIZE),
            queue_ratio=cfg.BACKPRESSURE_QUEUE_RATIO,
            check_interval_s=cfg.BACKPRESSURE_CHECK_S,
        )
        # A search node that does not answer pauses indexing: said in the log and on the overview.
        self.outage = Outage(blueprint.name, self._waiting, store=pause_marks)
        self.bulks_in_flight = max(1, cfg.BULKS_IN_FLIGHT)
        self._bulk_threads = self.bulks_in_flight + 1
        self.sink = BulkSink.from_settings(
            self.engine,
            chunk_size=batch_size,
            gate=threading.BoundedSemaphore(self.bulks_in_flight),
            wait=self._sleep_in_bulk_thread,
            on_throttled=self.backpressure.on_throttled,
            on_unavailable=self._on_unavailable,
            on_not_ready=lambda n: self.backpressure.on_unavailable("cluster not ready"),
            on_available=self.outage.answered,
        )
        self.processor = processor if processor is not None else BatchProcessor(blueprint, self.sink)
        # client.id = consumer id: the group's member list says which heartbeats are still members.
        self.broker: Broker = broker if broker is not None else KafkaBroker(
            blueprint.name, blueprint.consumer_group, **{"client.id": self.consumer_id, **(consumer_overrides or {})})
        self._stop = threading.Event()
        self._last_state = 0.0
        self.batches = 0
        self.order = CommitOrder()
        self._in_flight: deque[tuple[int, list[Incoming], Future]] = deque()
        self._unrecorded: list = []  # reports of committed batches whose figures are not in Redis yet
        self._recorded_at = 0.0
        self._bulks = ThreadPoolExecutor(max_workers=self._bulk_threads, thread_name_prefix=f"bulk-{blueprint.name}")

    # -- rebalance callbacks -------------------------------------------------
    def _on_assign(self, partitions):
        log.info("%s assigned %s", self.blueprint.name, [p.partition for p in partitions])
        self.processor.forget_main_writes()

    def _on_revoke(self, partitions):
        log.info("%s revoked %s", self.blueprint.name, [p.partition for p in partitions])
        self.processor.forget_main_writes()

    def _on_lost(self, partitions):
        self.processor.forget_main_writes()
        log.warning("%s lost %s; their uncommitted work will be replayed by the new owner",
                    self.blueprint.name, [p.partition for p in partitions])

    # -- loop ----------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self, stop: threading.Event | None = None, max_batches: int | None = None) -> None:
        if stop is not None:
            self._stop = stop
        if not self.broker.wait_for_topic(self.blueprint.topic, self._stop):
            self._bulks.shutdown(wait=True)
            self.broker.close()
            return
        self.broker.subscribe(self.blueprint.topic, on_assign=self._on_assign, on_revoke=self._on_revoke,
                              on_lost=self._on_lost)
        self._failures = 0
        busy = True
        try:
            while not self._stop.is_set():
                if max_batches is not None and self.batches + len(self._in_flight) >= max_batches:
                    self._settle_all()
                    break
                # Before polling only while batches are coming: an idle consumer does not read the
                # node's write queue every second (that HTTP call was a third of its idle CPU); the
                # check before each bulk below still holds every batch under pressure.
                if busy and not self._bulks_running():
                    self._pause_while_under_pressure()
                batch = self._poll_batch()
                busy = bool(batch)
                self._publish_state()
                self._settle(block=False)
                if not batch:
                    self._record_figures(now=True)
                    continue
                seq = self.order.register(batch)
                try:
                    self._hygiene()
                    prepared = self.processor.prepare(batch)
                except ConsumerStopping:
                    raise
                except Exception:
                    self._hygiene.reset()
                    log.exception("%s: batch of %d failed before it was resolved; it will be retried",
                                  self.blueprint.name, len(batch))
                    self.order.fail(seq)
                    self._settle_all()
                    continue
                self._make_room()
                if not self.order.holds(seq):
                    continue  # an earlier batch failed and this one was rewound with it: it is polled again
                if self.backpressure.reading_due():
                    self._pause_while_under_pressure()
                self._in_flight.append((seq, batch, self._bulks.submit(self._complete, prepared)))
                # Batches that finished are accounted and committed now that the node has the next bulk.
                self._settle(block=False)
            self._settle_all()
        except ConsumerStopping:
            pass
        finally:
            self._close()

    def _pause_while_under_pressure(self) -> None:
        """Hold the next bulk while the node's write queue is under pressure. The queue is read only
        once none of our own bulks is in flight (waited for here, once per reading): with our own
        request in it, a node with a short queue would read as a neighbour's pressure and shrink
        every batch."""
        for _, _, future in list(self._in_flight):
            self._await(future)
        while not self._stop.is_set():
            pause = self.backpressure.pause_for()
            if not pause:
                return
            self._publish_state(force=True)
            self._idle(pause)

    def _bulks_running(self) -> int:
        return sum(1 for _, _, future in self._in_flight if not future.done())

    def _make_room(self) -> None:
        """Wait until a bulk thread is free for the next batch. A batch that finished well is accounted
        after the next one is submitted, so the node is not kept waiting on our bookkeeping and commit;
        after a failure everything is settled first (the failure rewinds the batches after it)."""
        while self._bulks_running() >= self._bulk_threads:
            self._await(next(future for _, _, future in self._in_flight if not future.done()))
        if any(future.done() and future.exception() is not None for _, _, future in self._in_flight):
            while self._in_flight:
                self._settle(block=True)

    def _complete(self, prepared):
        """On a bulk thread: write one prepared batch until every message is resolved."""
        self._hygiene()
        try:
            return self.processor.complete(prepared)
        except Exception:
            self._hygiene.reset()
            raise

    def _settle(self, block: bool) -> None:
        """Account for finished bulks (the oldest first, waiting for it if ``block``); commit the resolved
        prefix; after a failure, wait for every bulk still in flight and rewind to the failed batch."""
        while self._in_flight:
            seq, batch, future = self._in_flight[0]
            if not future.done():
                if not block:
                    break
                self._await(future)
            self._in_flight.popleft()
            block = False
            try:
                report = future.result()
            except ConsumerStopping:
                raise
            except Exception as exc:
                log.error("%s: batch of %d failed before it was resolved (%s: %s); it will be retried",
                          self.blueprint.name, len(batch), type(exc).__name__, exc, exc_info=exc)
                self.order.fail(seq)
                continue
            self.order.resolve(seq)
            self.outage.answered()  # a no-op unless this consumer was waiting for the node
            self._failures = 0  # the backoff grows only while batches keep failing
            self.batches += 1
            self.backpressure.on_batch_done(report)
            self._commit(self.order.releasable())
            self._unrecorded.append(report)
        self._record_figures()
        if self.order.blocked_by_failure():
            self._record_figures(now=True)
            for _, _, future in self._in_flight:
                self._await(future)
            self._in_flight.clear()
            self._rewind(self.order.discard_all())
            self._failures += 1
            self._idle(backoff_delay(self._failures, 0.5, 30.0))

    def _settle_all(self) -> None:
        while self._in_flight:
            self._settle(block=True)
        if self.order.in_flight():  # a batch that failed in prepare with nothing in flight
            self._settle(block=False)
        self._record_figures(now=True)

    def _record_figures(self, now: bool = False) -> None:
        """The figures of committed batches go to Redis together, at most every ``RECORD_INTERVAL_S`` while
        batches keep coming, and at once when a poll finds nothing new: at everyday rates a Redis round
        trip per batch was a tenth of the consumer's CPU, and the console reads them once a second anyway."""
        if not self._unrecorded:
            return
        if not now and time.monotonic() - self._recorded_at < RECORD_INTERVAL_S:
            return
        reports, self._unrecorded = self._unrecorded, []
        self._recorded_at = time.monotonic()
        try:
            self.processor.record(*reports)
        except Exception as exc:  # the batches are resolved and committed: figures must not undo that
            log.warning("%s: could not record the figures of %d batch(es): %s", self.blueprint.name, len(reports), exc)

    def _await(self, future: Future) -> None:
        """Wait for a bulk thread; past one second, keep polling with partitions paused so the group keeps us."""
        if wait_for_futures([future], timeout=1.0).not_done:
            self._idle_until(future.done, None)

    def _poll_batch(self) -> list[Incoming]:
        # With no bulk in flight there is nothing to settle between two polls, so an idle consumer waits
        # longer: the broker hands a message over the moment it arrives, only a stop request waits more.
        wait = self.batch_wait_s if self._in_flight else max(self.batch_wait_s, IDLE_POLL_S)
        return self.broker.consume_batch(self.backpressure.batch_size, wait)

    def _owned(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self.broker.assignment()}

    def _commit(self, batch: list[Incoming]) -> None:
        if not batch:
            return
        offsets = commit_offsets(batch, self._owned())
        if not offsets:
            return
        try:
            self.broker.commit(offsets)
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
                    self.broker.seek(TopicPartition(topic, partition, offset))
                except KafkaException as exc:
                    log.warning("seek failed: %s", exc)

    def _on_unavailable(self, error: str) -> None:
        """On a bulk thread: a bulk request nobody answered; the sink waits and tries again."""
        self.backpressure.on_unavailable(error)
        self.outage.unavailable(error)

    def _waiting(self) -> int:
        """Events not yet committed on this consumer's partitions (its share of the consumer lag)."""
        assignment = self.broker.assignment()
        if not assignment:
            return 0
        total = 0
        for tp in self.broker.committed(assignment, timeout=2):
            low, high = self.broker.watermarks(TopicPartition(tp.topic, tp.partition), timeout=2)
            total += high - (tp.offset if tp.offset >= 0 else low)
        return total

    def _sleep_in_bulk_thread(self, seconds: float) -> None:
        """The sink's wait between retries, on a bulk thread: no Kafka calls here (the client is not shared)."""
        if self._stop.wait(seconds):
            raise ConsumerStopping()

    def _idle(self, seconds: float) -> None:
        """Wait with partitions paused while still polling, so the group keeps us and rebalances are served."""
        self._idle_until(lambda: False, time.monotonic() + seconds)

    def _idle_until(self, done, deadline: float | None) -> None:
        assignment = self.broker.assignment()
        if assignment:
            self.broker.pause(assignment)
        try:
            while not done():
                if self._stop.is_set() and deadline is not None:
                    raise ConsumerStopping()
                remaining = 0.5 if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    break
                msg = self.broker.poll(min(remaining, 0.1 if deadline is None else 0.5))
                if msg is not None:
                    # A partition assigned during the wait is not paused: put the message back.
                    self.broker.seek(TopicPartition(msg.topic, msg.partition, msg.offset))
                    self.broker.pause([TopicPartition(msg.topic, msg.partition)])
                self._publish_state()
        finally:
            assignment = self.broker.assignment()
            if assignment:
                self.broker.resume(assignment)

    def _publish_state(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_state < 1.0:
            return
        self._last_state = now
        try:
            self.outage.report()
        except Exception as exc:  # logging an outage must never stop indexing
            log.debug("could not report an outage: %s", exc)
        try:
            self.states.publish_state(
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
        # Bulks still in flight finish (their retry waits end at once on stop) and are not committed.
        wait_for_futures([future for _, _, future in self._in_flight])
        self._record_figures(now=True)
        close_pool_connections(self._bulks, self._bulk_threads)  # each bulk thread's own
        self._bulks.shutdown(wait=True)
        try:
            self.states.clear_state(self.blueprint.name, self.consumer_id)
        except Exception:
            pass
        # No commit here: everything resolved was committed batch by batch.
        self.broker.close()
