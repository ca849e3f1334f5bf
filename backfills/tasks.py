"""Celery tasks of backfills and cutovers (queue `backfills`)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import Backfill, BackfillProgress


@shared_task(ignore_result=True, queue="backfills")
def run_backfill_chunks(backfill_id: str) -> int:
    from .runner import ChunkRunner

    return ChunkRunner(backfill_id).run()


@shared_task(ignore_result=True)
def resume_stalled_backfills() -> int:
    """Restart workers for running backfills whose chunks wait or whose worker died."""
    stale_before = timezone.now() - timedelta(seconds=settings.SEARCHSYNC_BACKFILL["STALE_CHUNK_S"])
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
            from .services import complete_if_done

            complete_if_done(backfill.pk)
    return started


@shared_task(ignore_result=True)
def retire_cutover_indices() -> int:
    from .cutover import retire_expired

    return retire_expired()


@shared_task(ignore_result=True)
def finish_interrupted_cutovers() -> int:
    """Complete alias swaps whose process died between recording the intent and the result."""
    from .cutover import finish_interrupted

    return finish_interrupted()
