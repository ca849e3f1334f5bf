"""Split a backfill's selection into id-range chunks (``backfill_progress`` rows)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max, Min

from indexing.blueprints.table_sources import blueprint_source

from . import selection as selections
from .models import Backfill, BackfillProgress


def source_alias(backfill: Backfill, source=None) -> str:
    """Where a backfill reads: its source database's replica. A fan-out reads the primary: a replica
    behind the change that started it would re-emit the old state, which versioning then refuses,
    and the new one would never come."""
    source = source or blueprint_source(backfill.blueprint)
    if backfill.purpose == Backfill.Purpose.FANOUT:
        return source.database
    return source.replica_alias


def selected(backfill: Backfill):
    source = blueprint_source(backfill.blueprint)
    qs = source.model.objects.using(source_alias(backfill, source))
    return source, selections.apply(source, qs, backfill.selection)


def plan(backfill: Backfill) -> int:
    """Create the chunks once; returns how many exist. Idempotent: a planned backfill is left alone."""
    if backfill.chunks.exists():
        return backfill.chunks.count()
    _, qs = selected(backfill)
    bounds = qs.aggregate(lo=Min("pk"), hi=Max("pk"))
    rows_total = qs.count()
    chunks = []
    if bounds["lo"] is not None:
        start = bounds["lo"]
        while start <= bounds["hi"]:
            end = min(start + backfill.chunk_size - 1, bounds["hi"])
            chunks.append(BackfillProgress(backfill=backfill, index_name=backfill.target_index.name, start_id=start,
                                           last_processed_id=start - 1, end_id=end))
            start = end + 1
    with transaction.atomic():
        BackfillProgress.objects.bulk_create(chunks)
        Backfill.objects.filter(pk=backfill.pk).update(rows_total=rows_total)
    backfill.rows_total = rows_total
    return len(chunks)
