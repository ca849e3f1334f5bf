"""Runs one reconciliation report: classify, repair unless dry run, save progress per chunk."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from indexing.blueprints.contracts import Event, event_type_for
from indexing.blueprints.main_content import unchanged_main
from indexing.blueprints.table_sources import blueprint_source
from indexing.engines import BulkAction, SearchEngine, get_engine
from indexing.models import EventFormat, IndexBlueprint, Reconciliation
from indexing.outbox import emit as outbox
from indexing.pipeline.bulk_sink import BulkSink
from indexing.pipeline.writer import target_of, write_documents
from indexing.reconciliation.compare import (
    DOC_FIELDS,
    IndexDoc,
    classify_docs,
    classify_rows,
    joined_differ,
)
from indexing.reconciliation.locks import run_lock
from indexing.reconciliation.pacing import Pacer
from indexing.reconciliation.reading import (
    CHUNK_SIZE,
    doc_chunks,
    existing_ids,
    row_chunks,
)
from indexing.reconciliation.tally import Tally

log = logging.getLogger(__name__)


class ReconciliationError(Exception):
    """The run cannot start: nothing to reconcile, or another run holds the index."""



class Reconciler:
    """Runs one ``Reconciliation`` report: classify, repair unless dry run, save progress per chunk."""

    def __init__(self, report: Reconciliation, engine: SearchEngine | None = None, chunk_size: int = CHUNK_SIZE):
        self.report = report
        self.blueprint: IndexBlueprint = report.blueprint
        self.engine = engine or get_engine()
        self.chunk_size = chunk_size
        self.source = self.model = None  # resolved in run(), where a failure lands on the report
        self.joined_fields: tuple = ()
        self.replica = self.primary = None  # the source's aliases, resolved with it in run()
        self.tally = Tally()
        self.pacer = Pacer(report.rows_per_second)
        self.lock = run_lock(report.index_name)

    def run(self) -> Reconciliation:
        report = self.report
        started = time.monotonic()
        locked = False
        try:
            locked = self.lock.acquire(blocking=False)
            if not locked:
                return self._finish(Reconciliation.Status.FAILED,
                                    error=f"another reconciliation of {report.index_name} is running")
            self.source = blueprint_source(self.blueprint)
            self.model = self.source.model
            self.replica, self.primary = self.source.replica_alias, self.source.database
            self._reset(report)
            expire_before = timezone.now() - timedelta(hours=self.blueprint.tombstone_retention_hours)
            self.joined_fields = joined_fields_of(self.blueprint, report.index_name, self.source.joined_fields)
            for rows in row_chunks(self.model, self.replica, self.chunk_size, self.source.version_field):
                joined = None
                if self.source.joined_fields:
                    # Versions and joined fields as the documents would be built now, in one statement.
                    events = self.source.events(self.model.objects.using(self.replica).filter(
                        pk__in=[pk for pk, _ in rows]).order_by("pk"))
                    rows = [(e.entity_id, e.version) for e in events]
                    joined = {e.entity_id: {f: e.payload.get(f) for f in self.joined_fields} for e in events}
                self._check_rows(rows, joined)
                self._chunk_done(len(rows))
            # A search sees only refreshed writes (unlike _mget): refresh once, so the
            # document pass sees everything acknowledged before it starts.
            self.engine.refresh(report.index_name)
            for docs in doc_chunks(self.engine, report.index_name, self.chunk_size):
                self._check_docs(docs, expire_before)
                self._chunk_done(len(docs))
            return self._finish(Reconciliation.Status.COMPLETED, started=started)
        except Exception as exc:  # the report is the record of a failed run; the worker stays up
            log.exception("reconciliation #%s of %s failed", report.pk, report.index_name)
            return self._finish(Reconciliation.Status.FAILED, started=started, error=f"{type(exc).__name__}: {exc}")
        finally:
            if locked:
                try:
                    self.lock.release()
                except Exception:  # expired meanwhile: nothing left to free
                    pass

    # -- passes ------------------------------------------------------------------
    def _check_rows(self, rows: list[tuple[str, int]], joined: dict | None = None) -> None:
        self.report.checked_db += len(rows)
        docs = self._docs_of([pk for pk, _ in rows])
        missing, stale = classify_rows(rows, docs, joined)
        if not (missing or stale):
            return
        # Confirm on the primary: keep ids whose newest row is still ahead of the index.
        if joined is not None:
            events = self.source.events(self.model.objects.using(self.primary).filter(pk__in=missing + stale))
            current = {e.entity_id: e.version for e in events}
            now_joined = {e.entity_id: {f: e.payload.get(f) for f in self.joined_fields} for e in events}
            stale = [pk for pk in stale if pk in current and (
                current[pk] > docs[pk].version or joined_differ(docs[pk].joined, now_joined[pk]))]
        else:
            current = dict(
                (str(pk), v) for pk, v in
                self.model.objects.using(self.primary).filter(pk__in=missing + stale).values_list(
                    "pk", self.source.version_field)
            )
            stale = [pk for pk in stale if pk in current and current[pk] > docs[pk].version]
        missing = [pk for pk in missing if pk in current]
        if stale:
            # A main index behind only on sidecar-only changes holds the row's main content: not drift.
            unchanged = unchanged_main(self.blueprint, self.report.index_name, stale, self.engine, self.primary)
            stale = [pk for pk in stale if pk not in unchanged]
        for pk in missing:
            if pk in docs and docs[pk].version >= current[pk]:
                # A tombstone at or above the row's version: an event at the row's version
                # loses to it, so only a new write of the row (a higher version) can fix this.
                log.warning("%s %s: tombstone v%s is not below the row's v%s; a re-emit cannot win",
                            self.report.index_name, pk, docs[pk].version, current[pk])
        self.tally.add("missing", missing)
        self.tally.add("stale", stale)
        if not self.report.dry_run:
            self.report.repaired += self._reemit(missing + stale)

    def _check_docs(self, docs: list[IndexDoc], expire_before: datetime) -> None:
        self.report.checked_index += len(docs)
        orphaned, expired = classify_docs(docs, existing_ids(self.model, self.replica, [d.id for d in docs]), expire_before)
        if orphaned or expired:
            # A row the replica has not received yet must not be deleted from the index.
            on_primary = existing_ids(self.model, self.primary, [d.id for d in orphaned + expired])
            orphaned = [d for d in orphaned if d.id not in on_primary]
            expired = [d for d in expired if d.id not in on_primary]
        self.tally.add("orphaned", [d.id for d in orphaned])
        self.tally.add("expired_tombstones", [d.id for d in expired])
        if not self.report.dry_run:
            self.report.repaired += self._delete_orphans(orphaned)
            self.report.purged += self._purge(expired)

    def _docs_of(self, ids: list[str]) -> dict[str, IndexDoc]:
        joined = self.joined_fields
        hits = self.engine.mget(self.report.index_name, ids, source=DOC_FIELDS + list(joined))
        return {doc_id: IndexDoc.from_hit(hit, joined) for doc_id, hit in hits.items()}

    # -- repairs -----------------------------------------------------------------
    def _reemit(self, ids: list[str]) -> int:
        """Upsert events at each row's current version and payload, read from the primary."""
        if not ids:
            return 0
        with transaction.atomic(using=self.primary):
            rows = list(self.model.objects.using(self.primary).filter(pk__in=ids).order_by("pk"))
            events = self.source.events(rows)
            if self._fed_by_table_changes:
                self._write(events)
            else:
                for event in events:
                    outbox.emit(aggregate_type=self.blueprint.aggregate_type, aggregate_id=event.entity_id,
                                version=event.version, payload=event.payload, tenant_id=event.tenant_id,
                                using=self.primary)
        return len(rows)

    def _delete_orphans(self, docs: list[IndexDoc]) -> int:
        """Delete events one version above what the index holds: the row is gone, its delete was lost."""
        if not docs:
            return 0
        if self._fed_by_table_changes:
            self._write([Event(event_id=str(uuid.uuid4()), event_type=event_type_for(self.blueprint.aggregate_type, True),
                               entity_id=doc.id, tenant_id=doc.tenant_id, version=doc.version + 1,
                               timestamp=timezone.now(), payload={}) for doc in docs])
            return len(docs)
        with transaction.atomic(using=self.primary):
            for doc in docs:
                outbox.emit(aggregate_type=self.blueprint.aggregate_type, aggregate_id=doc.id, version=doc.version + 1,
                            payload=None, tenant_id=doc.tenant_id, delete=True, using=self.primary)
        return len(docs)

    @property
    def _fed_by_table_changes(self) -> bool:
        return self.blueprint.event_format == EventFormat.DEBEZIUM_TABLE

    def _write(self, events: list[Event]) -> None:
        """Repairs of a blueprint fed by a table's change stream: the outbox does not reach it, and
        touching the rows would change the application's data. They are written like a backfill's
        documents instead, through the document writer at the rows' stamps: a change streamed
        meanwhile carries a higher stamp and wins whichever lands last. An index and its sidecar are
        repaired together, as every write reaches both."""
        index = self.blueprint.indices.get(Q(name=self.report.index_name) | Q(sidecar__name=self.report.index_name))
        write_documents(self.blueprint, [target_of(index)], [(None, event) for event in events],
                        BulkSink.from_settings(self.engine))

    def _purge(self, docs: list[IndexDoc]) -> int:
        """Hard-delete expired tombstones, only if unchanged since read.

        External versioning refuses a delete whose version is not above the
        stored one, so version + 1 deletes exactly the tombstone we saw; a
        document rewritten meanwhile answers 409 and stays.
        """
        if not docs:
            return 0
        results = self.engine.bulk(BulkAction("delete", self.report.index_name, d.id, d.version + 1) for d in docs)
        return sum(1 for r in results if r.ok)

    # -- report bookkeeping --------------------------------------------------------
    def _reset(self, report: Reconciliation) -> None:
        # A redelivered task (acks_late after a worker loss) starts the same report over.
        report.status = Reconciliation.Status.RUNNING
        report.started_at = timezone.now()
        report.finished_at = report.duration_s = None
        report.checked_db = report.checked_index = report.repaired = report.purged = 0
        report.error = ""
        self._save_counts()
        report.save(update_fields=["status", "started_at", "finished_at", "duration_s", "checked_db", "checked_index",
                                   "repaired", "purged", "error", "sample_ids", *Reconciliation.DRIFT_CLASSES])

    def _save_counts(self) -> None:
        for drift_class, count in self.tally.counts.items():
            setattr(self.report, drift_class, count)
        self.report.sample_ids = self.tally.samples

    def _chunk_done(self, items: int) -> None:
        """Publish progress, pick up a rate changed meanwhile, keep the lock, then pace."""
        report = self.report
        self._save_counts()
        Reconciliation.objects.filter(pk=report.pk).update(
            checked_db=report.checked_db, checked_index=report.checked_index, repaired=report.repaired,
            purged=report.purged, sample_ids=report.sample_ids,
            **{c: getattr(report, c) for c in Reconciliation.DRIFT_CLASSES},
        )
        report.rows_per_second = Reconciliation.objects.filter(pk=report.pk).values_list("rows_per_second", flat=True).first()
        self.lock.reacquire()
        self.pacer.set_rate(report.rows_per_second)
        self.pacer.pace(items)

    def _finish(self, status: str, started: float | None = None, error: str = "") -> Reconciliation:
        report = self.report
        self._save_counts()
        report.status = status
        report.error = error[:10_000]
        report.finished_at = timezone.now()
        if started is not None:
            report.duration_s = round(time.monotonic() - started, 3)
        report.save()
        log.info("reconciliation #%s of %s %s: %s", report.pk, report.index_name, status,
                 {c: getattr(report, c) for c in Reconciliation.DRIFT_CLASSES})
        return report



def joined_fields_of(blueprint: IndexBlueprint, index_name: str, joined_fields) -> tuple:
    """The joined fields the index holds: all of them in a main index, only its own in a sidecar."""
    side = blueprint.indices.filter(sidecar__name=index_name).values_list("sidecar", flat=True).first()
    if side:
        return tuple(f for f in joined_fields if f in side["fields"])
    return tuple(joined_fields)
