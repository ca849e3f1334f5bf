"""Freshness, measured: commit → indexed lag per event, commit → searchable per canary.

Samples go to Redis lists, one per blueprint, source and minute, so every
consumer process adds to the same window; a beat task rolls finished minutes
up into ``FreshnessMinute`` rows (p50/p95/p99/max) for the charts. A batch's
samples are one list entry (comma-separated): recording runs between one
bulk's answer and the next bulk, and one entry per event made it a tenth of
that time.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import transaction
from django.utils import timezone

from indexing.blueprints.sidecar import SidecarSpec
from indexing.conf import searchsync_settings
from indexing.models import FreshnessMinute, IndexBlueprint
from indexing.observability import thresholds as rules
from indexing.observability.thresholds import IndexThreshold
from indexing.core.freshness_samples import (  # noqa: F401 (re-exported: freshness is read through this module)
    SAMPLES_KEY, Quantiles, minute_of, parse_entries, quantiles, recent, record, samples,
)

def roll_up(blueprint: IndexBlueprint, now: float | None = None, lookback_minutes: int = 10) -> int:
    """Store quantiles of every finished minute still in Redis; idempotent."""
    now = now or time.time()
    current = minute_of(now)
    written = 0
    for source in FreshnessMinute.Source.values:
        for i in range(1, lookback_minutes + 1):
            minute = current - 60 * i
            q = quantiles(samples(blueprint.name, source, minute))
            if q is None:
                continue
            FreshnessMinute.objects.update_or_create(
                blueprint=blueprint,
                source=source,
                minute=datetime.fromtimestamp(minute, tz=dt_timezone.utc),
                defaults=dict(count=q.count, p50_ms=q.p50_ms, p95_ms=q.p95_ms, p99_ms=q.p99_ms, max_ms=q.max_ms),
            )
            written += 1
    return written


def index_thresholds(blueprint: IndexBlueprint) -> list[IndexThreshold]:
    """The freshness threshold of each index search clients read: the live index and its sidecar,
    each its refresh interval plus the budget unless the blueprint sets it (``thresholds.py``)."""
    live = blueprint.live_index()
    budget = float(searchsync_settings.FRESHNESS_BUDGET_MS)
    side = (live.sidecar if live is not None else None) or {}
    spec = SidecarSpec.of(blueprint.sidecar)
    return rules.index_thresholds(
        main_index=live.name if live is not None else "",
        main_refresh_interval=(live.settings if live is not None else blueprint.settings).get("refresh_interval"),
        budget_ms=budget, main_override_ms=blueprint.freshness_threshold_ms,
        sidecar_index=side.get("name", ""), sidecar_refresh_interval=side.get("settings", {}).get("refresh_interval"),
        sidecar_override_ms=spec.freshness_threshold_ms if spec else None,
    )


def thresholds(blueprint: IndexBlueprint) -> dict[str, float]:
    """The p99 each source may reach, in ms: each index's canary its own threshold, events (commit →
    acknowledged, no refresh) what the tightest index leaves the pipeline."""
    indices = index_thresholds(blueprint)
    result = {FreshnessMinute.Source.EVENT: rules.event_threshold_ms(indices)}
    result.update({t.source: t.threshold_ms for t in indices})
    return result


def breaches(blueprint: IndexBlueprint, window_s: int) -> tuple[float | None, list[tuple[str, float, float]]]:
    """(worst p99 of any source, [(source, p99, threshold) past its threshold]) over the last ``window_s``."""
    worst, past = None, []
    for source, limit in thresholds(blueprint).items():
        q = recent(blueprint.name, source, window_s)
        if q is None:
            continue
        worst = q.p99_ms if worst is None else max(worst, q.p99_ms)
        if q.p99_ms > limit:
            past.append((source, q.p99_ms, limit))
    return worst, past


def history(blueprint: IndexBlueprint, source: str, minutes: int = 60) -> list[FreshnessMinute]:
    since = timezone.now() - timedelta(minutes=minutes)
    return list(FreshnessMinute.objects.filter(blueprint=blueprint, source=source, minute__gte=since).order_by("minute"))


# --- canaries -----------------------------------------------------------------


def send_canary(blueprint: IndexBlueprint) -> tuple[int, float]:
    """Write a canary change through the real path (outbox → relay → Kafka → consumer)."""
    from indexing.blueprints.indices import CANARY_ENTITY_ID, CANARY_TENANT_ID
    from indexing.outbox.emit import emit

    version = time.time_ns() // 1000  # microseconds: strictly increasing for the one canary document
    with transaction.atomic():
        emit(
            aggregate_type=blueprint.aggregate_type,
            aggregate_id=CANARY_ENTITY_ID,
            version=version,
            payload=blueprint.canary_payload,
            tenant_id=CANARY_TENANT_ID,
        )
    return version, time.time()


def await_canary(blueprint: IndexBlueprint, version: int, committed_at: float, timeout_s: float,
                 engine=None, poll_s: float = 0.05) -> float | None:
    """Poll the live index (and its sidecar) until the canary's version is searchable in each; record
    each index's lag (the sidecar's under ``sidecar``) and return the main index's, in ms."""
    from indexing.blueprints.indices import CANARY_ENTITY_ID
    from indexing.engines import EngineUnavailable, get_engine

    engine = engine or get_engine()
    live = blueprint.live_index()
    if live is None:
        return None
    query = {
        "size": 1,
        "_source": False,
        "query": {"bool": {"filter": [{"ids": {"values": [CANARY_ENTITY_ID]}}, {"range": {"version": {"gte": version}}}]}},
    }
    waiting = {live.name: FreshnessMinute.Source.CANARY}
    if live.sidecar:
        waiting[live.sidecar["name"]] = FreshnessMinute.Source.SIDECAR
    found: dict[str, float] = {}
    deadline = committed_at + timeout_s
    while waiting and time.time() < deadline:
        for index, source in list(waiting.items()):
            try:
                hits = engine.search(index, query)["hits"]["hits"]
            except EngineUnavailable:
                hits = []
            if hits:
                found[index] = (time.time() - committed_at) * 1000
                record(blueprint.name, source, [found[index]])
                del waiting[index]
        if waiting:
            time.sleep(poll_s)
    # A canary that never shows up is the worst freshness there is: record the
    # timeout itself so the quantiles turn red instead of going quiet.
    for source in waiting.values():
        record(blueprint.name, source, [timeout_s * 1000])
    return found.get(live.name)
