"""Freshness, measured: commit → indexed lag per event, commit → searchable per canary.

Samples go to Redis lists, one per blueprint, source and minute, so every
consumer process adds to the same window; a beat task rolls finished minutes
up into ``FreshnessMinute`` rows (p50/p95/p99/max) for the charts. A batch's
samples are one list entry (comma-separated): recording runs between one
bulk's answer and the next bulk, and one entry per event made it a tenth of
that time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import transaction
from django.utils import timezone

from .models import FreshnessMinute, IndexBlueprint
from .redis_store import get_redis

SAMPLES_KEY = "searchsync:freshness:{name}:{source}:{minute}"
SAMPLES_TTL_S = 3 * 3600


@dataclass(frozen=True)
class Quantiles:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def quantiles(values: list[float]) -> Quantiles | None:
    if not values:
        return None
    if len(values) == 1:
        v = values[0]
        return Quantiles(1, v, v, v, v)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return Quantiles(len(values), cuts[49], cuts[94], cuts[98], max(values))


def _minute(ts: float) -> int:
    return int(ts // 60) * 60


def record(name: str, source: str, lags_ms: list[float], at: float | None = None) -> None:
    if not lags_ms:
        return
    key = SAMPLES_KEY.format(name=name, source=source, minute=_minute(at or time.time()))
    pipe = get_redis().pipeline(transaction=False)
    pipe.rpush(key, ",".join([f"{max(0.0, lag):.1f}" for lag in lags_ms]))
    pipe.expire(key, SAMPLES_TTL_S)
    pipe.execute()


def samples(name: str, source: str, minute: int) -> list[float]:
    return parse_entries(get_redis().lrange(SAMPLES_KEY.format(name=name, source=source, minute=minute), 0, -1))


def parse_entries(entries: list[bytes]) -> list[float]:
    """The samples of some list entries (each one batch's, comma-separated)."""
    return [float(v) for entry in entries for v in entry.split(b",")]


def recent(name: str, source: str, seconds: int = 60) -> Quantiles | None:
    """Quantiles over the samples of the last ``seconds`` (whole minutes, current one included)."""
    now = time.time()
    values: list[float] = []
    minute = _minute(now - seconds)
    while minute <= now:
        values.extend(samples(name, source, minute))
        minute += 60
    return quantiles(values)


def roll_up(blueprint: IndexBlueprint, now: float | None = None, lookback_minutes: int = 10) -> int:
    """Store quantiles of every finished minute still in Redis; idempotent."""
    now = now or time.time()
    current = _minute(now)
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


def thresholds(blueprint: IndexBlueprint) -> dict[str, float]:
    """The p99 each source may reach, in ms. With a sidecar the blueprint's threshold holds for the
    sidecar (its fields are what must be fresh); the main index is allowed its own refresh interval
    on top, since it is built to be slow on purpose."""
    from .visibility import refresh_seconds

    limit = float(blueprint.threshold_ms)
    result = {FreshnessMinute.Source.EVENT: limit, FreshnessMinute.Source.CANARY: limit}
    live = blueprint.live_index()
    if live is not None and live.sidecar:
        interval = refresh_seconds(live.settings.get("refresh_interval")) or 0.0
        result[FreshnessMinute.Source.CANARY] = limit + interval * 1000
        result[FreshnessMinute.Source.SIDECAR] = limit
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
    from .blueprints import CANARY_ENTITY_ID, CANARY_TENANT_ID
    from .outbox import emit

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
    from .blueprints import CANARY_ENTITY_ID
    from .engines import EngineUnavailable, get_engine

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
