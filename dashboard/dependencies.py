"""Is every service the platform needs up, and which version is it?

Each check is a plain function returning a ``Dependency``; ``check_all`` runs
them concurrently with a short timeout so a dead service slows the page by at
most that timeout, never by the sum of them. ``recent_checks`` reuses a result
for a few seconds, and one caller at a time refreshes it: ``/healthz`` is public
and polled, and each full check opens a Kafka admin client and pings Celery.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connection

CHECK_TIMEOUT_S = 3.0


@dataclass
class Dependency:
    name: str
    ok: bool
    version: str = ""
    detail: str = ""
    latency_ms: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _timed(name, fn) -> Dependency:
    started = time.monotonic()
    try:
        version, detail = fn()
        dep = Dependency(name, True, version, detail)
    except Exception as exc:  # a health check reports every failure, whatever its type
        dep = Dependency(name, False, "", f"{type(exc).__name__}: {exc}"[:500])
    dep.latency_ms = round((time.monotonic() - started) * 1000, 1)
    return dep


def check_postgres():
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
        cur.execute("SHOW wal_level")
        wal_level = cur.fetchone()[0]
    return version, f"wal_level={wal_level}"


def check_redis():
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_S, socket_connect_timeout=CHECK_TIMEOUT_S)
    try:
        info = client.info("server")
    finally:
        client.close()
    return info.get("redis_version", "?"), f"uptime {info.get('uptime_in_seconds', '?')} s"


def check_kafka():
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "socket.timeout.ms": 3000})
    cluster = admin.describe_cluster(request_timeout=CHECK_TIMEOUT_S).result(timeout=CHECK_TIMEOUT_S)
    metadata = admin.list_topics(timeout=CHECK_TIMEOUT_S)
    brokers = len(metadata.brokers)
    return f"cluster {cluster.cluster_id}", f"{brokers} broker(s), {len(metadata.topics)} topics"


def check_search():
    from indexing.engines import get_engine

    info = get_engine().info()
    health = f"cluster {info.cluster_name}"
    return f"{info.distribution} {info.version}", health


def check_celery():
    from celery import current_app as app

    replies = app.control.inspect(timeout=1.0).ping() or {}
    if not replies:
        raise RuntimeError("no Celery worker answered a ping")
    import celery

    return celery.__version__, ", ".join(sorted(replies))


CHECKS = {
    "postgres": check_postgres,
    "redis": check_redis,
    "kafka": check_kafka,
    "search": check_search,
    "celery": check_celery,
}


def _run_check(name, fn):
    # Worker threads get their own DB connection; close it so checks don't leak them.
    from django.db import connections

    try:
        return _timed(name, fn)
    finally:
        connections.close_all()


def check_all() -> list[Dependency]:
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        futures = [pool.submit(_run_check, name, fn) for name, fn in CHECKS.items()]
        return [f.result() for f in futures]


CACHE_S = 5.0
_cache: tuple[float, list[Dependency]] | None = None
_cache_lock = threading.Lock()


def recent_checks(max_age_s: float = CACHE_S) -> list[Dependency]:
    """The result of ``check_all`` from at most ``max_age_s`` ago (per process)."""
    global _cache
    with _cache_lock:  # concurrent callers wait for one check rather than each running their own
        if _cache is None or time.monotonic() - _cache[0] > max_age_s:
            _cache = (time.monotonic(), check_all())
        return _cache[1]


def forget_checks() -> None:
    """Drop the cached result (tests, or after changing what the checks talk to)."""
    global _cache
    with _cache_lock:
        _cache = None
