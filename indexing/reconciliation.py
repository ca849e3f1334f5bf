"""Reconciliation: find where an index drifted from its source table and repair it through the pipeline.

Two passes, both in id-keyset chunks and paced by one rows/s throttle:

1. **Rows → documents.** Keyset pages of ``(id, version)`` from the replica
   alias; for each page one real-time ``_mget`` of the same ids. A row without
   a live document is **missing**; a row whose document has a lower version is
   **stale**.
2. **Documents → rows.** Every document of the index, paged with
   ``search_after`` on the ``id`` keyword with only ``deleted``/``updated_at``/
   ``tenant_id`` of ``_source``; the ids of each page are looked up in the
   replica in one query. A live document without a row is **orphaned**; a
   tombstone without a row older than the blueprint's retention is an
   **expired tombstone**.

Repairs never write documents directly: they are events in the outbox, so they
travel relay → Kafka → consumer and meet the same external-version rules as any
change. (A blueprint fed by a table's change stream is not reached by the outbox:
its repairs go through the same document writer as its backfills, at the rows'
change stamps, which its change events carry too.) A missing or stale row is
re-emitted as an upsert at the row's current
version (accepted because the index holds nothing or something older); an
orphan gets a delete at its document's version + 1, the smallest version that
beats what is there. Only the purge of expired tombstones writes to the index
itself: it is housekeeping of documents no event will ever concern again.

The replica may lag the primary, so every candidate is confirmed on the primary
before it counts: a row the replica has not seen yet is not an orphan, and a
row already updated on the primary is re-emitted at its newest version. A row
changed moments before it was checked may still count while its own event is in
flight; its repair is then a duplicate that the external version makes harmless.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

import audit
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Q
from django.utils import timezone

from . import outbox
from . import jobs
from .blueprints import CANARY_ENTITY_ID
from .engines import BulkAction, SearchEngine, get_engine
from .contracts import Event, event_type_for
from .models import EventFormat, IndexBlueprint, PhysicalIndex, Reconciliation
from .redis_store import get_redis
from .sink import BulkSink
from .table_sources import blueprint_source
from .writer import target_of, write_documents

log = logging.getLogger(__name__)

# Conventions every source model and document builder of searchsync follows:
# the row's version column, and the keyword field holding the entity id.
VERSION_FIELD = "version"
ID_FIELD = "id"
DOC_FIELDS = ["deleted", "updated_at", "tenant_id"]

CHUNK_SIZE = 1000
LOCK_KEY = "searchsync:reconcile:{index}"
LOCK_TTL_S = 300  # renewed every chunk; a dead run frees its index after this


class ReconciliationError(Exception):
    """The run cannot start: nothing to reconcile, or another run holds the index."""


@dataclass(frozen=True)
class IndexDoc:
    id: str
    version: int
    deleted: bool
    updated_at: datetime | None
    tenant_id: str
    joined: dict = field(default_factory=dict)  # fields built from joined rows, when the source has any

    @classmethod
    def from_hit(cls, hit: dict, joined_fields=()) -> "IndexDoc":
        source = hit.get("_source") or {}
        return cls(hit["_id"], int(hit["_version"]), source.get("deleted") is True,
                   _parse_time(source.get("updated_at")), source.get("tenant_id") or "",
                   {name: source.get(name) for name in joined_fields})


def _parse_time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# --- classification (pure functions) --------------------------------------------


def classify_rows(rows: list[tuple[str, int]], docs: dict[str, IndexDoc],
                  joined: dict[str, dict] | None = None) -> tuple[list[str], list[str]]:
    """(missing, stale) ids among ``(id, version)`` rows, given their documents by id.

    ``joined`` holds, per id, the fields the source builds from joined rows (a brand's name): a
    document showing other values is stale too, whatever its version says."""
    missing, stale = [], []
    for pk, version in rows:
        doc = docs.get(pk)
        if doc is None or doc.deleted:
            missing.append(pk)
        elif doc.version < version or (joined and _joined_differ(doc.joined, joined.get(pk, {}))):
            stale.append(pk)
    return missing, stale


def _joined_differ(got: dict, expected: dict) -> bool:
    def norm(value):
        return None if value in ("", [], None) else value

    return any(norm(got.get(name)) != norm(value) for name, value in expected.items())


def classify_docs(docs: list[IndexDoc], existing: set[str], expire_before: datetime) -> tuple[list[IndexDoc], list[IndexDoc]]:
    """(orphaned, expired tombstones) among documents, given the ids that have a row."""
    orphaned, expired = [], []
    for doc in docs:
        if doc.id in existing:
            continue  # a tombstone whose row exists is the first pass's "missing"
        if not doc.deleted:
            orphaned.append(doc)
        elif doc.updated_at is not None and doc.updated_at < expire_before:
            expired.append(doc)
    return orphaned, expired


# --- reading both sides ---------------------------------------------------------


def row_chunks(model, using: str, chunk_size: int, version_field: str = VERSION_FIELD):
    """``[(id, version), ...]`` pages in id order: ``WHERE id > last ORDER BY id LIMIT n``, never OFFSET."""
    last = None
    while True:
        qs = model.objects.using(using).order_by("pk")
        if last is not None:
            qs = qs.filter(pk__gt=last)
        rows = list(qs.values_list("pk", version_field)[:chunk_size])
        if not rows:
            return
        last = rows[-1][0]
        yield [(str(pk), version) for pk, version in rows]
        if len(rows) < chunk_size:
            return


def doc_chunks(engine: SearchEngine, index: str, chunk_size: int):
    """Pages of every document but the canary, as ``IndexDoc`` (no document bodies)."""
    page: list[IndexDoc] = []
    for hit in engine.search_after(index, ID_FIELD, source=DOC_FIELDS, size=chunk_size):
        if hit["_id"] == CANARY_ENTITY_ID:
            continue
        page.append(IndexDoc.from_hit(hit))
        if len(page) >= chunk_size:
            yield page
            page = []
    if page:
        yield page


def existing_ids(model, using: str, ids: list[str]) -> set[str]:
    """The ids among ``ids`` that have a row; ids the key type cannot hold have none."""
    pk_field = model._meta.pk
    keys = {}
    for doc_id in ids:
        try:
            keys[pk_field.to_python(doc_id)] = doc_id
        except (ValidationError, ValueError, TypeError):
            continue
    if not keys:
        return set()
    found = model.objects.using(using).filter(pk__in=list(keys)).values_list("pk", flat=True)
    return {str(pk) for pk in found}


# --- pacing ---------------------------------------------------------------------


class Pacer:
    """Keep the long-run read rate at ``rate`` items/s by sleeping after each chunk.

    One reconciliation is one process reading sequentially, so a local pacer is
    enough (a backfill spread over workers needs the shared bucket of
    backfills/throttle.py). Changing the rate restarts the measurement, so a
    new limit applies from the next chunk on without a catch-up burst.
    """

    def __init__(self, rate: int | None, clock=time.monotonic, sleep=time.sleep):
        self.clock, self.sleep = clock, sleep
        self.rate = None
        self.set_rate(rate)

    def set_rate(self, rate: int | None) -> None:
        if rate != self.rate:
            self.rate = rate
            self._since = self.clock()
            self._done = 0

    def pace(self, items: int) -> float:
        if not self.rate:
            return 0.0
        self._done += items
        wait = self._since + self._done / self.rate - self.clock()
        if wait > 0:
            self.sleep(wait)
        return max(0.0, wait)


# --- the run --------------------------------------------------------------------


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Reconciliation.DRIFT_CLASSES, 0))
    samples: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in Reconciliation.DRIFT_CLASSES})

    def add(self, drift_class: str, ids: list[str]) -> None:
        self.counts[drift_class] += len(ids)
        room = Reconciliation.SAMPLE_SIZE - len(self.samples[drift_class])
        if room > 0:
            self.samples[drift_class].extend(ids[:room])


class Reconciler:
    """Runs one ``Reconciliation`` report: classify, repair unless dry run, save progress per chunk."""

    def __init__(self, report: Reconciliation, engine: SearchEngine | None = None, chunk_size: int = CHUNK_SIZE):
        self.report = report
        self.blueprint: IndexBlueprint = report.blueprint
        self.engine = engine or get_engine()
        self.chunk_size = chunk_size
        self.source = self.model = None  # resolved in run(), where a failure lands on the report
        self.joined_fields: tuple = ()
        self.replica = settings.SEARCHSYNC_REPLICA_ALIAS
        self.tally = Tally()
        self.pacer = Pacer(report.rows_per_second)
        self.lock = get_redis().lock(LOCK_KEY.format(index=report.index_name), timeout=LOCK_TTL_S)

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
            events = self.source.events(self.model.objects.using(DEFAULT_DB_ALIAS).filter(pk__in=missing + stale))
            current = {e.entity_id: e.version for e in events}
            now_joined = {e.entity_id: {f: e.payload.get(f) for f in self.joined_fields} for e in events}
            stale = [pk for pk in stale if pk in current and (
                current[pk] > docs[pk].version or _joined_differ(docs[pk].joined, now_joined[pk]))]
        else:
            current = dict(
                (str(pk), v) for pk, v in
                self.model.objects.using(DEFAULT_DB_ALIAS).filter(pk__in=missing + stale).values_list(
                    "pk", self.source.version_field)
            )
            stale = [pk for pk in stale if pk in current and current[pk] > docs[pk].version]
        missing = [pk for pk in missing if pk in current]
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
            on_primary = existing_ids(self.model, DEFAULT_DB_ALIAS, [d.id for d in orphaned + expired])
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
        with transaction.atomic():
            rows = list(self.model.objects.using(DEFAULT_DB_ALIAS).filter(pk__in=ids).order_by("pk"))
            events = self.source.events(rows)
            if self._fed_by_table_changes:
                self._write(events)
            else:
                for event in events:
                    outbox.emit(aggregate_type=self.blueprint.aggregate_type, aggregate_id=event.entity_id,
                                version=event.version, payload=event.payload, tenant_id=event.tenant_id)
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
        with transaction.atomic():
            for doc in docs:
                outbox.emit(aggregate_type=self.blueprint.aggregate_type, aggregate_id=doc.id, version=doc.version + 1,
                            payload=None, tenant_id=doc.tenant_id, delete=True)
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


# --- entry points -----------------------------------------------------------------


def joined_fields_of(blueprint: IndexBlueprint, index_name: str, joined_fields) -> tuple:
    """The joined fields the index holds: all of them in a main index, only its own in a sidecar."""
    side = blueprint.indices.filter(sidecar__name=index_name).values_list("sidecar", flat=True).first()
    if side:
        return tuple(f for f in joined_fields if f in side["fields"])
    return tuple(joined_fields)


def target_index(blueprint: IndexBlueprint, index_name: str | None = None) -> str:
    """The index to compare: the named one (it must belong to the blueprint and take writes, or be the
    sidecar of one), else the live one."""
    if index_name:
        writing = blueprint.indices.filter(state__in=PhysicalIndex.WRITE_STATES)
        if not (writing.filter(name=index_name).exists() or writing.filter(sidecar__name=index_name).exists()):
            raise ReconciliationError(f"{index_name} is not a live or building index of {blueprint.name}")
        return index_name
    live = blueprint.live_index()
    if live is None:
        raise ReconciliationError(f"{blueprint.name} has no live index to reconcile")
    return live.name


def is_running(index_name: str) -> bool:
    return bool(get_redis().exists(LOCK_KEY.format(index=index_name)))


def create_report(blueprint: IndexBlueprint, *, dry_run: bool, rows_per_second: int | None = None, user=None,
                  index_name: str | None = None) -> Reconciliation:
    return Reconciliation.objects.create(
        blueprint=blueprint, index_name=target_index(blueprint, index_name), dry_run=dry_run,
        rows_per_second=rows_per_second or None, requested_by=user if user and user.is_authenticated else None,
    )


def start(blueprint: IndexBlueprint, *, dry_run: bool, rows_per_second: int | None = None, user=None,
          index_name: str | None = None) -> Reconciliation:
    """Create a queued report (so its id exists at once) and hand the run to a Celery worker."""
    report = create_report(blueprint, dry_run=dry_run, rows_per_second=rows_per_second, user=user,
                           index_name=index_name)
    audit.record(user, "reconciliation.start", f"reconciliation:{report.pk} {report.index_name}",
                 details={"blueprint": blueprint.name, "dry_run": dry_run, "rows_per_second": rows_per_second})

    def enqueue():
        try:
            jobs.enqueue("indexing.tasks.reconcile", blueprint.pk, dry_run=dry_run,
                         rows_per_second=report.rows_per_second, user_id=report.requested_by_id, report_id=report.pk)
        except Exception as exc:  # broker down: say so on the report instead of leaving it queued forever
            Reconciliation.objects.filter(pk=report.pk, status=Reconciliation.Status.QUEUED).update(
                status=Reconciliation.Status.FAILED, finished_at=timezone.now(), error=f"could not enqueue: {exc}")

    # After commit, so the worker always finds the report row.
    transaction.on_commit(enqueue)
    report.refresh_from_db()
    return report


def reconcile(blueprint: IndexBlueprint, *, dry_run: bool = False, rows_per_second: int | None = None, user=None,
              index_name: str | None = None, engine: SearchEngine | None = None,
              chunk_size: int = CHUNK_SIZE) -> Reconciliation:
    """Run one reconciliation here and now; returns the finished report."""
    report = create_report(blueprint, dry_run=dry_run, rows_per_second=rows_per_second, user=user,
                           index_name=index_name)
    return Reconciler(report, engine=engine, chunk_size=chunk_size).run()
