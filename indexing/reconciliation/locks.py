"""One reconciliation per index at a time: a Redis lock, renewed every chunk."""

from __future__ import annotations

from indexing.core.redis_store import get_redis

LOCK_KEY = "searchsync:reconcile:{index}"
LOCK_TTL_S = 300  # renewed every chunk; a dead run frees its index after this


def run_lock(index_name: str):
    return get_redis().lock(LOCK_KEY.format(index=index_name), timeout=LOCK_TTL_S)


def is_running(index_name: str) -> bool:
    return bool(get_redis().exists(LOCK_KEY.format(index=index_name)))
