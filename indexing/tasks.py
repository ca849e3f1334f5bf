"""Celery tasks of the indexing side, scheduled by beat (see CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import logging

from celery import shared_task

from indexing.observability import freshness
from indexing.models import DeadLetter, IndexBlueprint
from indexing.core.redis_store import get_redis
from indexing.conf import searchsync_settings

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def send_canaries() -> None:
    for blueprint in IndexBlueprint.objects.filter(enabled=True):
        canary_round.delay(blueprint.pk)


@shared_task(ignore_result=True)
def canary_round(blueprint_id: int) -> float | None:
    """One canary through the real path; skipped while the previous one is still in flight."""
    blueprint = IndexBlueprint.objects.get(pk=blueprint_id)
    if not blueprint.canary_payload or blueprint.live_index() is None:
        return None
    timeout = searchsync_settings.CANARY_TIMEOUT_S
    lock = get_redis().lock(f"searchsync:canary:{blueprint.name}", timeout=timeout + 10, blocking=False)
    if not lock.acquire(blocking=False):
        return None
    try:
        version, committed_at = freshness.send_canary(blueprint)
        return freshness.await_canary(blueprint, version, committed_at, timeout)
    finally:
        lock.release()


@shared_task(ignore_result=True)
def roll_up_freshness() -> int:
    return sum(freshness.roll_up(b) for b in IndexBlueprint.objects.all())


@shared_task(ignore_result=True)
def clean_outbox() -> int:
    from indexing.core import source_databases
    from indexing.outbox.relay import clean_published

    deleted = 0
    for source in source_databases.declared().values():
        try:
            n = clean_published(using=source.alias)
        except Exception:  # one unreachable source database must not keep the others' outboxes growing
            log.exception("outbox cleanup of source %s failed", source.name)
            continue
        log.info("outbox cleanup of source %s: deleted %d published rows", source.name, n)
        deleted += n
    return deleted


@shared_task
def replay_dead_letters(ids: list[int], user: str = "") -> int:
    from indexing.pipeline import dead_letters

    return dead_letters.replay(DeadLetter.objects.filter(pk__in=ids).order_by("pk"), user=user)


# --- reconciliation -------------------------------------------------------------


@shared_task(ignore_result=True)
def reconcile(blueprint_id: int, dry_run: bool = False, rows_per_second: int | None = None, user_id: int | None = None,
              report_id: int | None = None) -> int:
    """Run one reconciliation; the API and console create the report first and pass its id."""
    from django.contrib.auth import get_user_model

    from indexing.models import Reconciliation
    from indexing.reconciliation import Reconciler, create_report

    if report_id is not None:
        report = Reconciliation.objects.select_related("blueprint").get(pk=report_id)
    else:
        user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
        report = create_report(IndexBlueprint.objects.get(pk=blueprint_id), dry_run=dry_run,
                               rows_per_second=rows_per_second, user=user)
    return Reconciler(report).run().pk


@shared_task(ignore_result=True)
def reconcile_all() -> int:
    """The hourly self-healing round: one repairing run per enabled blueprint with a live index."""
    from indexing.reconciliation import is_running, start

    started = 0
    for blueprint in IndexBlueprint.objects.filter(enabled=True):
        live = blueprint.live_index()
        if live is None:
            continue  # nothing to compare yet
        # The main index and its sidecar drift independently (a bulk item can fail on one only).
        for name in [live.name] + ([live.sidecar["name"]] if live.sidecar else []):
            if is_running(name):
                continue  # the previous round is still going
            start(blueprint, dry_run=False, index_name=name)
            started += 1
    return started


@shared_task(ignore_result=True)
def evaluate_alerts() -> int:
    from indexing.observability.alerts import evaluate_all

    return evaluate_all()
