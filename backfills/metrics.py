"""Backfill metrics, registered with indexing's /metrics collector (indexing never imports backfills)."""

from prometheus_client.core import GaugeMetricFamily

from .models import Backfill
from .services import progress


def backfill_metrics():
    rate = GaugeMetricFamily("searchsync_backfill_rows_per_second", "Average rows/s of running backfills.",
                             labels=["backfill", "index"])
    done = GaugeMetricFamily("searchsync_backfill_progress_ratio", "Share of rows done, 0–1.", labels=["backfill", "index"])
    for backfill in Backfill.objects.filter(status=Backfill.Status.RUNNING).select_related("target_index"):
        p = progress(backfill)
        rate.add_metric([str(backfill.pk), backfill.target_index.name], p.rows_per_second)
        done.add_metric([str(backfill.pk), backfill.target_index.name], p.percent / 100)
    yield rate
    yield done
