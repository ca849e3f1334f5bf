"""Starting reconciliations: the target index, the report row, a Celery run or one here and now."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

import audit
from indexing.core import jobs
from indexing.engines import SearchEngine
from indexing.models import IndexBlueprint, PhysicalIndex, Reconciliation
from indexing.reconciliation.reading import CHUNK_SIZE
from indexing.reconciliation.reconciler import Reconciler, ReconciliationError


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
