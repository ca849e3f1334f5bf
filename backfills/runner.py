"""The chunk worker: claim a chunk, read it page by page from the replica, index it.

Chunks are claimed with ``FOR UPDATE SKIP LOCKED``, so any number of workers
share a backfill; a chunk whose worker died (RUNNING but untouched for
STALE_CHUNK_S) is taken over and resumes from ``last_processed_id``, which is
saved after every bulk request (consecutive pages sent together). Documents
carry each row's current version as the external version, so a backfill racing
the live stream can only lose to newer data, never overwrite it.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass
from datetime import timedelta

from django.db import close_old_connections, connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from indexing.core.backoff import backoff_delay
from indexing.core.db_hygiene import close_pool_connections
from indexing.engines import SearchEngine, get_engine
from indexing.pipeline.backpressure import read_write_queue
from indexing.pipeline.bulk_sink import BulkSink
from indexing.pipeline.writer import plan_writes, prebuild_body, send_writes, target_of

from .models import Backfill, BackfillProgress
from .planner import selected, source_alias
from .throttle import BackfillThrottle, Pressure
from indexing.conf import searchsync_settings

log = logging.getLogger(__name__)

WRITE_THREADS = 2
STATUS_SQL = 'SELECT status, rows_per_second FROM "{table}" WHERE "{pk}" = %s'.format(
    table=Backfill._meta.db_table, pk=Backfill._meta.pk.column)


@dataclass
class Page:
    ids: list  # primary keys read, in order: the last one is the resume point once the page is written
    events: list
    read_ms: float

    @classmethod
    def joined(cls, pages: list["Page"]) -> "Page":
        """Consecutive pages as one write: its resume point is the last page's, its read latency the slowest."""
        if len(pages) == 1:
            return pages[0]
        return cls([i for page in pages for i in page.ids], [e for page in pages for e in page.events],
                   max(page.read_ms for page in pages))


class KeysetRead:
    """A backfill's keyset statement (ids after one, up to another, in order, a page at most), compiled
    once: building it through the ORM for every page cost more CPU than reading the page's ids.

    The ORM puts the two keyset bounds last among the statement's parameters; where it does not (or
    the key needs converting on the way out), every page is built through the ORM as before."""

    def __init__(self, qs, page_size: int, alias: str):
        self.qs, self.page_size = qs, page_size
        self.sql, self.params = None, None
        page = self._page(qs, -2, -1)
        sql, params = page.query.get_compiler(using=alias).as_sql()
        if tuple(params[-2:]) == (-2, -1) and not hasattr(qs.model._meta.pk, "from_db_value"):
            self.sql, self.params = sql, list(params[:-2])

    def _page(self, qs, after_id, end_id):
        return qs.filter(pk__gt=after_id, pk__lte=end_id).order_by("pk").values_list("pk", flat=True)[: self.page_size]

    def read(self, cursor, after_id, end_id) -> list:
        if self.sql is None:
            return list(self._page(self.qs, after_id, end_id))
        cursor.execute(self.sql, [*self.params, after_id, end_id])
        return [row[0] for row in cursor.fetchall()]


@dataclass
class InFlight:
    """A page's write handed to a write thread, its progress not saved yet."""

    chunk: BackfillProgress
    future: Future
    page: Page
    backfill: Backfill
    last: bool = False  # the chunk's last page: the chunk is completed once it resolves


class ChunkRunner:
    def __init__(self, backfill_id, engine: SearchEngine | None = None, worker: str | None = None):
        self.backfill_id = backfill_id
        self.engine = engine or get_engine()
        self.worker = worker or f"{socket.gethostname()}:{uuid.uuid4().hex[:6]}"
        self.throttle = BackfillThrottle(backfill_id)
        self._throttled = 0
        self._pool_read_at = 0.0
        self._pool_pressure = False
        # "Not ready" (a node away, a primary moving) slows the backfill down like a 429 would. The gate:
        # one request on the wire; the other write thread resolves the page answered before it.
        self.sink = BulkSink.from_settings(self.engine, on_throttled=self._on_throttled,
                                           on_not_ready=self._on_throttled, gate=threading.BoundedSemaphore(1))
        self._writes: ThreadPoolExecutor | None = None
        self._reads: ThreadPoolExecutor | None = None
        self._carried: InFlight | None = None  # a chunk's last write, in flight while the next chunk starts
        self._keyset: KeysetRead | None = None  # the backfill's keyset statement, compiled at its first page
        self._page_round = 0

    def _on_throttled(self, rejected: int) -> None:
        self._throttled += rejected

    # -- claiming ------------------------------------------------------------
    def claim(self) -> BackfillProgress | None:
        stale_before = timezone.now() - timedelta(seconds=searchsync_settings.BACKFILL_STALE_CHUNK_S)
        with transaction.atomic():
            chunk = (
                BackfillProgress.objects.select_for_update(skip_locked=True)
                .filter(backfill_id=self.backfill_id)
                .filter(
                    Q(status=BackfillProgress.Status.PENDING)
                    | Q(status=BackfillProgress.Status.RUNNING, updated_at__lt=stale_before)
                )
                .order_by("start_id")
                .first()
            )
            if chunk is None:
                return None
            chunk.status = BackfillProgress.Status.RUNNING
            chunk.worker = self.worker
            chunk.attempts += 1
            chunk.updated_at = timezone.now()
            chunk.save(update_fields=["status", "worker", "attempts", "updated_at"])
            return chunk

    # -- running -------------------------------------------------------------
    def run(self, max_chunks: int | None = None) -> int:
        """Work chunks until none is left (or the backfill stops); returns chunks completed."""
        done = 0
        # One page's bulk in flight while the next page is read; a second write thread sends the next
        # page's request while the first still resolves its answer.
        self._writes = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="backfill-write")
        # The next page is read from the database while this one is prepared.
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-read")
        try:
            done = self._run(max_chunks)
        finally:
            self.close()
        return done

    def _run(self, max_chunks: int | None) -> int:
        done = 0
        while max_chunks is None or done < max_chunks:
            backfill = Backfill.objects.select_related("blueprint", "target_index").get(pk=self.backfill_id)
            if backfill.status != Backfill.Status.RUNNING:
                break
            chunk = self.claim()
            if chunk is None:
                break
            if self.run_chunk(chunk):
                done += 1
        if self._carried is not None:
            # The last chunk's last page: no next chunk to overlap it with.
            carried, self._carried = self._carried, None
            self._resolve(carried, read_pool=True)
        from .services import complete_if_done

        complete_if_done(self.backfill_id)
        return done

    def close(self) -> None:
        """Close the write and read threads and their database connections (one each)."""
        self._carried = None  # after an error: its write is waited for below, its progress not saved
        close_pool_connections(self._writes, WRITE_THREADS)
        close_pool_connections(self._reads, 1)
        self._writes.shutdown(wait=True)
        self._reads.shutdown(wait=True)

    def run_chunk(self, chunk: BackfillProgress) -> bool:
        """Index one chunk from where it was left; False if the backfill was paused or cancelled.

        Three stages overlap: the next page is read from the database on the read thread while the
        pages read before it are prepared here as one request (N+1) and request N's bulk is in flight
        on a write thread; N+1 is handed to the other write thread before N's answer is resolved, so
        the node does not wait for our answer handling. Consecutive pages are joined into a request of
        about BACKFILL_BULK_DOCS documents (``_request_full``). A request's progress
        (``last_processed_id``) is saved only once its write has resolved, in order, so a worker that
        dies redoes at most the pages it was writing. The node's write queue is read (once a second)
        with none of our writes in flight.

        Once the chunk is read to its end, its last write is left in flight (``_carried``) while the
        next chunk is claimed and its first page read and prepared: the chunk is marked completed when
        that write resolves, not before. Without this, the node sat idle at every chunk boundary."""
        self._page_round = 0
        in_flight, self._carried = self._carried, None
        reading: Future | None = None  # the next page, read on the read thread
        joining: list[Page] = []  # pages read, to be sent together in the next request
        backfill = Backfill.objects.select_related("blueprint", "target_index").get(pk=self.backfill_id)
        # Large enough for any request of joined pages (``_request_full``), so each goes out whole.
        self.sink.chunk_size = max(searchsync_settings.BACKFILL_BULK_DOCS, 2 * backfill.page_size)
        try:
            while True:
                # Per page only what may change while a backfill runs (status, rate); the blueprint and the
                # target index are fixed for its life, and reloading their JSON every page was measurable.
                backfill.status, backfill.rows_per_second = self._status_and_rate()
                if backfill.status != Backfill.Status.RUNNING:
                    if in_flight is not None:
                        self._resolve(in_flight, read_pool=True)
                        in_flight = None
                    # Hand the chunk back as it is: whoever resumes continues from last_processed_id.
                    BackfillProgress.objects.filter(pk=chunk.pk, worker=self.worker).update(
                        status=BackfillProgress.Status.PENDING, updated_at=timezone.now())
                    return False
                if reading is None:
                    reading = self._reads.submit(self._read, backfill, chunk.last_processed_id, chunk.end_id)
                page = reading.result()
                # A short page, or one that reached the chunk's end: nothing is left to read.
                read_all = len(page.ids) < backfill.page_size or page.ids[-1] >= chunk.end_id
                # A keyset page starts after the last id of the one before: the next read can start now.
                reading = None if read_all else self._reads.submit(self._read, backfill, page.ids[-1], chunk.end_id)
                if page.ids:
                    self.throttle.acquire(len(page.ids), backfill.rows_per_second)
                    joining.append(page)
                if joining and (read_all or self._request_full(backfill, joining)):
                    page, joining = Page.joined(joining), []
                    # The request's Python work (documents built, checked, serialised) is done here too,
                    # while the previous bulk is in flight: the write thread then only sends.
                    job = self.prepare_write(backfill, page.events)
                    if in_flight is not None and self._pool_reading_due():
                        self._resolve(in_flight, read_pool=True)
                        in_flight = None
                    previous, in_flight = in_flight, InFlight(chunk, self._writes.submit(self._write, job), page,
                                                              backfill)
                    if previous is not None:
                        self._resolve(previous, read_pool=False)
                if read_all:
                    if in_flight is not None and in_flight.chunk is chunk:
                        in_flight.last = True  # the chunk is completed once this write resolves
                    else:  # every page of the chunk has resolved (or it had none left)
                        self._completed(chunk)
                    self._carried, in_flight = in_flight, None
                    return True
        finally:
            # An error or a stop: let the write finish and save nothing more; a page read ahead is dropped.
            unfinished = [in_flight.future] if in_flight is not None else []
            if reading is not None:
                unfinished.append(reading)
            wait_for_futures(unfinished)

    def _request_full(self, backfill: Backfill, joining: list[Page]) -> bool:
        """Whether another page would take the next request past its size: BACKFILL_BULK_DOCS documents
        (two per row with a sidecar), a quarter second of a throttled backfill's rate (its progress then
        moves in steps its rate checks can see), one page at least. A fan-out's pages go one by one: each
        is an outbox transaction, not a bulk request."""
        if backfill.purpose == Backfill.Purpose.FANOUT:
            return True
        rows = searchsync_settings.BACKFILL_BULK_DOCS // (2 if backfill.target_index.sidecar else 1)
        rate = self.throttle.last_rate  # the page just read drew its rows at it: no second Redis read
        if rate is not None:
            rows = min(rows, int(rate / 4))
        return sum(len(page.ids) for page in joining) + backfill.page_size > rows

    def _status_and_rate(self) -> tuple[str, int | None]:
        """The backfill's status and rows/s limit, read before every page: plain SQL, as the ORM spent
        more time building this statement than the database took to answer it."""
        with connections[router.db_for_read(Backfill)].cursor() as cur:
            cur.execute(STATUS_SQL, [self.backfill_id])
            row = cur.fetchone()
        if row is None:
            raise Backfill.DoesNotExist(self.backfill_id)
        return row[0], row[1]

    def _resolve(self, write: InFlight, read_pool: bool) -> None:
        self._page_done(write.chunk, write.future, write.page, write.backfill, read_pool)
        if write.last:
            self._completed(write.chunk)

    def _completed(self, chunk: BackfillProgress) -> None:
        BackfillProgress.objects.filter(pk=chunk.pk).update(
            status=BackfillProgress.Status.COMPLETED, updated_at=timezone.now())

    def _read(self, backfill: Backfill, after_id: int, end_id: int) -> "Page":
        close_old_connections()
        return self.read_page(backfill, after_id, end_id)

    def _write(self, job) -> None:
        close_old_connections()
        job()

    def _page_done(self, chunk: BackfillProgress, future: Future, page: "Page", backfill: Backfill,
                   read_pool: bool) -> None:
        """After a page's write resolved: pressure, then its progress (the resume point). ``read_pool``:
        no write of ours is in flight, so the node's write queue may be read if a reading is due."""
        future.result()
        pressure = Pressure(cluster=self._cluster_pressure(read_pool),
                            database=page.read_ms > searchsync_settings.BACKFILL_DB_LATENCY_BOUND_MS)
        self.throttle.observe(pressure)
        if pressure.any and not backfill.rows_per_second:
            # Unthrottled backfills have no rate to shrink: they back off instead.
            time.sleep(backoff_delay(self._page_round, 0.25, 5.0))
            self._page_round += 1
        else:
            self._page_round = 0
        chunk.last_processed_id = page.ids[-1]
        BackfillProgress.objects.filter(pk=chunk.pk).update(
            last_processed_id=chunk.last_processed_id, rows_done=F("rows_done") + len(page.ids),
            updated_at=timezone.now(), worker=self.worker)

    def read_page(self, backfill: Backfill, after_id: int, end_id: int) -> "Page":
        """One keyset page and its events, in a read-only transaction with a statement timeout, on the
        replica alias (a fan-out's on the primary). Only primary keys are read into Python; the source
        builds the events from them in one statement where it can (no model instances)."""
        from indexing.blueprints.table_sources import blueprint_source

        alias = source_alias(backfill)
        if self._keyset is None:
            _, qs = selected(backfill)
            self._keyset = KeysetRead(qs, backfill.page_size, alias)
        source = blueprint_source(backfill.blueprint)
        started = time.monotonic()
        with transaction.atomic(using=alias):
            with connections[alias].cursor() as cur:
                # One round trip, no parameters: several statements are allowed even on a server-binding cursor.
                cur.execute("SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = "
                            f"{int(searchsync_settings.BACKFILL_STATEMENT_TIMEOUT_MS)}")
                ids = self._keyset.read(cur, after_id, end_id)
            # The database-pressure signal is the keyset read's latency, as it always was; building
            # the events is a join whose cost grows with the page, not with the database's load.
            read_ms = (time.monotonic() - started) * 1000
            events = source.events_for_ids(ids, alias) if ids else []
        return Page(ids, events, read_ms)

    def prepare_write(self, backfill: Backfill, events):
        """The page's write as a job for the write thread, its documents already planned."""
        if backfill.purpose == Backfill.Purpose.FANOUT:
            return functools.partial(self.emit_rows, backfill, events)
        blueprint = backfill.blueprint
        # Events at each row's current version → the same document writer as the live stream. A row
        # that becomes a dead letter gets its own event id then (writer.as_message), not every row now.
        plan = plan_writes(blueprint, [target_of(backfill.target_index)], [(None, e) for e in events])
        # The pages joined, one bulk request (unless over BULK_MAX_BYTES), its body serialised here too.
        prebuild_body(plan, self.sink.chunk_size, self.sink.max_bytes)
        return functools.partial(self.send_rows, backfill, plan)

    def send_rows(self, backfill: Backfill, plan) -> None:
        send_writes(backfill.blueprint, plan, self.sink)

    def emit_rows(self, backfill: Backfill, events) -> None:
        """A fan-out page: the rows' upserts, built from one snapshot of the primary, into the outbox.
        The live pipeline writes them to every write target with their versions; a page emitted twice
        (a worker died before saving its progress) is a duplicate versions absorb."""
        from indexing.outbox.emit import emit_many

        with transaction.atomic():
            emit_many(backfill.blueprint.aggregate_type, events)

    def _pool_reading_due(self) -> bool:
        # The thread pool is read at most once a second, not on every page.
        return time.monotonic() - self._pool_read_at >= 1.0

    def _cluster_pressure(self, read_pool: bool) -> bool:
        """429s or "not ready" answers since the last page resolved, else the node's write queue."""
        throttled, self._throttled = self._throttled, 0
        if throttled:
            return True
        if read_pool and self._pool_reading_due():
            self._pool_read_at = time.monotonic()
            # A backfill paces itself: an unreachable node slows it down as a full queue does.
            reading = read_write_queue(self.engine, searchsync_settings.BACKPRESSURE_QUEUE_RATIO)
            self._pool_pressure = reading.under_pressure or not reading.reachable
        return self._pool_pressure

