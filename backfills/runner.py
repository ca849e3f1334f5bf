"""The chunk worker: claim a chunk, read it page by page from the replica, index it.

Chunks are claimed with ``FOR UPDATE SKIP LOCKED``, so any number of workers
share a backfill; a chunk whose worker died (RUNNING but untouched for
STALE_CHUNK_S) is taken over and resumes from ``last_processed_id``, which is
saved after every page. Documents carry each row's current version as the
external version, so a backfill racing the live stream can only lose to newer
data, never overwrite it.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from indexing.backoff import backoff_delay
from indexing.engines import EngineUnavailable, SearchEngine, get_engine
from indexing.sink import BulkSink
from indexing.writer import target_of, with_new_event_id, write_documents

from .models import Backfill, BackfillProgress
from .planner import selected, source_alias
from .throttle import BackfillThrottle, Pressure

log = logging.getLogger(__name__)


class ChunkRunner:
    def __init__(self, backfill_id, engine: SearchEngine | None = None, worker: str | None = None):
        self.backfill_id = backfill_id
        self.engine = engine or get_engine()
        self.worker = worker or f"{socket.gethostname()}:{uuid.uuid4().hex[:6]}"
        self.cfg = settings.SEARCHSYNC_BACKFILL
        self.throttle = BackfillThrottle(backfill_id)
        self._throttled = 0
        self._pool_read_at = 0.0
        self._pool_pressure = False
        # "Not ready" (a node away, a primary moving) slows the backfill down like a 429 would.
        self.sink = BulkSink.from_settings(self.engine, on_throttled=self._on_throttled,
                                           on_not_ready=self._on_throttled)

    def _on_throttled(self, rejected: int) -> None:
        self._throttled += rejected

    # -- claiming ------------------------------------------------------------
    def claim(self) -> BackfillProgress | None:
        stale_before = timezone.now() - timedelta(seconds=self.cfg["STALE_CHUNK_S"])
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
        while max_chunks is None or done < max_chunks:
            backfill = Backfill.objects.select_related("blueprint", "target_index").get(pk=self.backfill_id)
            if backfill.status != Backfill.Status.RUNNING:
                break
            chunk = self.claim()
            if chunk is None:
                break
            if self.run_chunk(chunk):
                done += 1
        from .services import complete_if_done

        complete_if_done(self.backfill_id)
        return done

    def run_chunk(self, chunk: BackfillProgress) -> bool:
        """Index one chunk from where it was left; False if the backfill was paused or cancelled."""
        page_round = 0
        while True:
            backfill = Backfill.objects.select_related("blueprint", "target_index").get(pk=self.backfill_id)
            if backfill.status != Backfill.Status.RUNNING:
                # Hand the chunk back as it is: whoever resumes continues from last_processed_id.
                BackfillProgress.objects.filter(pk=chunk.pk, worker=self.worker).update(
                    status=BackfillProgress.Status.PENDING, updated_at=timezone.now())
                return False
            rows, read_ms = self.read_page(backfill, chunk.last_processed_id, chunk.end_id)
            if not rows:
                BackfillProgress.objects.filter(pk=chunk.pk).update(
                    status=BackfillProgress.Status.COMPLETED, updated_at=timezone.now())
                return True
            self.throttle.acquire(len(rows), backfill.rows_per_second)
            self._throttled = 0
            if backfill.purpose == Backfill.Purpose.FANOUT:
                self.emit_rows(backfill, rows)
            else:
                self.index_rows(backfill, rows)
            pressure = Pressure(cluster=self._cluster_pressure(), database=read_ms > self.cfg["DB_LATENCY_BOUND_MS"])
            self.throttle.observe(pressure)
            if pressure.any and not backfill.rows_per_second:
                # Unthrottled backfills have no rate to shrink: they back off instead.
                time.sleep(backoff_delay(page_round, 0.25, 5.0))
                page_round += 1
            else:
                page_round = 0
            chunk.last_processed_id = rows[-1].pk
            BackfillProgress.objects.filter(pk=chunk.pk).update(
                last_processed_id=chunk.last_processed_id, rows_done=F("rows_done") + len(rows),
                updated_at=timezone.now(), worker=self.worker)

    def read_page(self, backfill: Backfill, after_id: int, end_id: int):
        """One keyset page in a read-only transaction with a statement timeout, on the replica alias
        (a fan-out's on the primary)."""
        alias = source_alias(backfill)
        _, qs = selected(backfill)
        started = time.monotonic()
        with transaction.atomic(using=alias):
            with connections[alias].cursor() as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                cur.execute("SELECT set_config('statement_timeout', %s, true)", [str(self.cfg["STATEMENT_TIMEOUT_MS"])])
            rows = list(qs.filter(pk__gt=after_id, pk__lte=end_id).order_by("pk")[: backfill.page_size])
        return rows, (time.monotonic() - started) * 1000

    def index_rows(self, backfill: Backfill, rows) -> None:
        """Rows → events at each row's current version → the same document writer as the live stream."""
        from indexing.table_sources import blueprint_source

        blueprint = backfill.blueprint
        source = blueprint_source(blueprint)
        target = target_of(backfill.target_index)
        # A fresh event id per row: each backfilled write is its own event (dead letters, replays).
        events = [(None, with_new_event_id(event, str(uuid.uuid4()))) for event in source.events(rows)]
        write_documents(blueprint, [target], events, self.sink)

    def emit_rows(self, backfill: Backfill, rows) -> None:
        """A fan-out page: the rows' upserts, built now from one snapshot of the primary, into the
        outbox. The live pipeline writes them to every write target with their versions; a page
        emitted twice (a worker died before saving its progress) is a duplicate versions absorb."""
        from indexing.outbox import emit_many
        from indexing.sources import get_source

        blueprint = backfill.blueprint
        source = get_source(blueprint.source_model)
        with transaction.atomic():
            emit_many(blueprint.aggregate_type, source.events(rows))

    def _cluster_pressure(self) -> bool:
        if self._throttled:
            return True
        # The thread pool is read at most once a second, not on every page.
        now = time.monotonic()
        if now - self._pool_read_at >= 1.0:
            self._pool_read_at = now
            try:
                self._pool_pressure = (self.engine.write_thread_pool().queue_ratio
                                       >= settings.SEARCHSYNC["BACKPRESSURE_QUEUE_RATIO"])
            except EngineUnavailable:
                self._pool_pressure = True
        return self._pool_pressure

