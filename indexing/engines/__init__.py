"""Search engine adapters, chosen by settings.SEARCH_ENGINE."""

from functools import lru_cache

from django.conf import settings

from .base import (BulkAction, BulkItemResult, ClusterHealth, EngineInfo, EngineUnavailable, SearchEngine, ThreadPoolStats,
                   UnsupportedServer, bulk_body, bulk_chunks, serialize_document)

__all__ = [
    "BulkAction",
    "BulkItemResult",
    "ClusterHealth",
    "EngineInfo",
    "EngineUnavailable",
    "SearchEngine",
    "ThreadPoolStats",
    "UnsupportedServer",
    "build_engine",
    "bulk_body",
    "bulk_chunks",
    "get_engine",
    "serialize_document",
]


def build_engine(kind: str, url: str, timeout: float | None = None) -> SearchEngine:
    timeout = settings.SEARCH_TIMEOUT_S if timeout is None else timeout
    if kind == "opensearch":
        from .opensearch import OpenSearchEngine

        return OpenSearchEngine(url, timeout)
    if kind == "elasticsearch":
        from .elasticsearch import ElasticsearchEngine

        return ElasticsearchEngine(url, timeout)
    raise ValueError(f"SEARCH_ENGINE must be 'opensearch' or 'elasticsearch', not {kind!r}")


@lru_cache(maxsize=1)
def get_engine() -> SearchEngine:
    """The process-wide adapter for the configured cluster (clients pool their connections)."""
    return build_engine(settings.SEARCH_ENGINE, settings.SEARCH_URL)
