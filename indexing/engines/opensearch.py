"""OpenSearch 2/3 adapter (opensearch-py)."""

from __future__ import annotations

from typing import Iterator

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError

from .base import (BULK_FILTER_PATH, ClusterHealth, EngineInfo, EngineUnavailable, SearchEngine, ThreadPoolStats,
                   failover_options)
from .serializers import OrjsonSerializer

_WRITE_POOL_COLUMNS = "node_name,size,active,queue,queue_size,rejected"


class OpenSearchEngine(SearchEngine):
    kind = "opensearch"
    request_errors = (TransportError,)

    def __init__(self, url: str, timeout: float = 10.0):
        super().__init__(url, timeout)
        self.client = OpenSearch(hosts=self.hosts, timeout=timeout, pool_maxsize=16, serializer=OrjsonSerializer(),
                                 **failover_options(self.hosts))
        self._count_node_failures(self.client.transport)

    def _bulk_params(self) -> dict:
        # opensearch-py takes a lone ``timeout`` for the HTTP request's; with ``request_timeout``
        # beside it, ``timeout`` goes to the cluster as the bulk's wait for an unavailable primary.
        return {"request_timeout": self.timeout, "timeout": self.bulk_timeout}

    def _send_bulk(self, body: bytes) -> dict:
        return self.client.bulk(body=body, filter_path=BULK_FILTER_PATH, **self._bulk_params())

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OSConnectionError as exc:
            raise EngineUnavailable(str(exc)) from exc

    def info(self) -> EngineInfo:
        body = self._call(self.client.info)
        version = body.get("version", {})
        return EngineInfo(
            engine=self.kind,
            distribution=version.get("distribution", "opensearch"),
            version=version.get("number", "?"),
            cluster_name=body.get("cluster_name", "?"),
        )

    def write_thread_pool(self) -> ThreadPoolStats:
        rows = self._call(
            self.client.cat.thread_pool, thread_pool_patterns="write", format="json", h=_WRITE_POOL_COLUMNS
        )
        return self._sum_cat_write_pools(rows)

    def cluster_health(self) -> ClusterHealth:
        return ClusterHealth.from_response(self._call(self.client.cluster.health))

    def create_index(self, name: str, settings: dict, mappings: dict) -> None:
        self._call(self.client.indices.create, index=name, body={"settings": settings, "mappings": mappings})

    def delete_index(self, name: str) -> None:
        self._call(self.client.indices.delete, index=name, ignore_unavailable=True)

    def index_exists(self, name: str) -> bool:
        return bool(self._call(self.client.indices.exists, index=name))

    def get_mapping(self, name: str) -> dict:
        body = self._call(self.client.indices.get_mapping, index=name)
        return next(iter(body.values()))["mappings"]

    def put_settings(self, name: str, settings: dict) -> None:
        self._call(self.client.indices.put_settings, index=name, body={"index": settings})

    def get_settings(self, name: str) -> dict:
        body = self._call(self.client.indices.get_settings, index=name)
        return next(iter(body.values()))["settings"]["index"]

    def refresh(self, name: str) -> None:
        self._call(self.client.indices.refresh, index=name)

    def update_aliases(self, actions: list[dict]) -> None:
        self._call(self.client.indices.update_aliases, body={"actions": actions})

    def get_alias(self, alias: str) -> dict[str, dict]:
        try:
            body = self._call(self.client.indices.get_alias, name=alias)
        except NotFoundError:
            return {}
        return {index: data.get("aliases", {}).get(alias, {}) for index, data in body.items()}

    def get(self, index: str, doc_id: str) -> dict | None:
        try:
            return self._call(self.client.get, index=index, id=doc_id)
        except NotFoundError:
            return None

    def count(self, index: str, query: dict | None = None) -> int:
        body = {"query": query} if query else None
        return int(self._call(self.client.count, index=index, body=body)["count"])

    def search(self, index: str, body: dict) -> dict:
        return self._call(self.client.search, index=index, body=body)

    def scan(self, index: str, query: dict | None = None, source: bool | list[str] = True, size: int = 1000) -> Iterator[dict]:
        body = {"query": query or {"match_all": {}}, "_source": source, "version": True}
        yield from helpers.scan(self.client, query=body, index=index, size=size, preserve_order=False)

    def mget(self, index: str, ids: list[str], source: bool | list[str] = True) -> dict[str, dict]:
        if not ids:
            return {}
        docs = [{"_id": doc_id, "_source": source} for doc_id in ids]
        body = self._call(self.client.mget, index=index, body={"docs": docs})
        return self._found_docs(index, body)
