"""Celery tasks of backfills and cutovers (queue `backfills`)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .cutover import retire_expired
from .models import Backfill, BackfillProgress
from .runner import ChunkRunner
from .services import complete_if_done
from indexing.conf import searchsync_settings


@shared_task(ignore_result=True, queue="backfills")
def run_backfill_chunks(backfill_id: str) -> int:
    return ChunkRunner(backfill_id).run()


@shared_task(ignore_result=True)
def resume_stalled_backfills() -> int:
    """Restart workers for running backfills whose chunks wait or whose worker died."""
    stale_before = timezone.now() - timedelta(seconds=searchsync_settings.BACKFILL_STALE_CHUNK_S)
    fail_unplanned(stale_before)
    started = 0
    for backfill in Backfill.objects.filter(status=Backfill.Status.RUNNING):
        chunks = backfill.chunks
        orphaned = chunks.filter(status=BackfillProgress.Status.RUNNING, updated_at__lt=stale_before).count()
        alive = chunks.filter(status=BackfillProgress.Status.RUNNING, updated_at__gte=stale_before).exists()
        waiting = chunks.filter(status=BackfillProgress.Status.PENDING).exists()
        # Replace dead workers one for one; start one if work waits and nobody is on it.
        wanted = orphaned or (1 if waiting and not alive else 0)
        for _ in range(wanted):
            run_backfill_chunks.delay(str(backfill.pk))
        started += wanted
        if not orphaned and not alive and not waiting:
            complete_if_done(backfill.pk)
    return started


def fail_unplanned(created_before) -> int:
    """A planned backfill that never got chunks (planning crashed, or an older version created it
    outside a transaction) would wait forever: fail it visibly so an operator starts a new one."""
    return (Backfill.objects.filter(status=Backfill.Status.PLANNED, created_at__lt=created_before,
                                    started_at__isnull=True, chunks__isnull=True)
            .update(status=Backfill.Status.FAILED, finished_at=timezone.now(),
                    error="planning never finished: no chunks were created; start a new backfill"))


@shared_task(ignore_result=True)
def retire_cutover_indices() -> int:
    return retire_expired()


@shared_task(ignore_result=True)
def finish_interrupted_cutovers() -> int:
    """Complete alias swaps whose process died between recording the intent and the result."""
    from .cutover import finish_interrupted

    return finish_interrupted()
