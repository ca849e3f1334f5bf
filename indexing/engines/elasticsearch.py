"""Elasticsearch adapter: 7.17, 8.x and 9.x servers through the `elasticsearch` 8.x client.

The 8.x client sends `Accept`/`Content-Type: application/vnd.elasticsearch+json;
compatible-with=8` and checks the `X-Elastic-Product: Elasticsearch` response header.
7.17 accepts those headers and answers in its own (7.x) shapes; 9.x servers are documented to
accept 8-compatible requests (REST API compatibility). Servers older than 7.14 (and anything
that is not Elasticsearch) send no product header: the client refuses them and the adapter
raises `UnsupportedServer`; 7.14-7.16 are not verified. Verified against a real
7.17.28 node (devstack); 8.x/9.x are written for but not exercised here.

Differences from the OpenSearch adapter that this module absorbs:
- a request timeout is `elastic_transport.ConnectionTimeout`, which is *not* a
  `ConnectionError` (in opensearch-py it is): both mean "no answer" -> EngineUnavailable;
- a full write queue is item status 429 with `es_rejected_execution_exception` (OpenSearch:
  `rejected_execution_exception`); the pipeline goes by the status only;
- responses are `ObjectApiResponse` objects, not dicts: `.body` is returned.
"""

from __future__ import annotations

from typing import Iterator

from elastic_transport import ConnectionError as ESConnectionError
from elastic_transport import ConnectionTimeout as ESConnectionTimeout
from elastic_transport import TransportError as ESTransportError
from elasticsearch import ApiError, Elasticsearch, NotFoundError, UnsupportedProductError, helpers
from elasticsearch.serializer import OrjsonSerializer

from .base import (BULK_FILTER_PATH, ClusterHealth, EngineInfo, EngineUnavailable, SearchEngine, ThreadPoolStats,
                   UnsupportedServer, failover_options)

_WRITE_POOL_COLUMNS = "node_name,size,active,queue,queue_size,rejected"


class ElasticsearchEngine(SearchEngine):
    kind = "elasticsearch"
    request_errors = (ESTransportError, ApiError)

    def __init__(self, url: str, timeout: float = 10.0):
        super().__init__(url, timeout)
        # orjson both ways, as for OpenSearch: the standard library's json was most of an answer's decoding.
        self.client = Elasticsearch(hosts=self.hosts, request_timeout=timeout, serializer=OrjsonSerializer(),
                                    **failover_options(self.hosts))
        self._count_node_failures(self.client.transport.node_pool)

    def _send_bulk(self, body: bytes) -> dict:
        return self.client.bulk(operations=body, filter_path=BULK_FILTER_PATH, **self._bulk_params()).body

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ESConnectionError, ESConnectionTimeout) as exc:
            raise EngineUnavailable(str(exc)) from exc
        except UnsupportedProductError as exc:
            raise UnsupportedServer(
                f"{self.url} is not an Elasticsearch server the 8.x client accepts (7.14 or newer that sends "
                f"X-Elastic-Product; searchsync supports 7.17, 8.x and 9.x): {exc}"
            ) from exc

    def info(self) -> EngineInfo:
        body = self._call(self.client.info)
        version = body.get("version", {})
        return EngineInfo(
            engine=self.kind,
            distribution="elasticsearch",
            version=version.get("number", "?"),
            cluster_name=body.get("cluster_name", "?"),
        )

    def write_thread_pool(self) -> ThreadPoolStats:
        rows = self._call(self.client.cat.thread_pool, thread_pool_patterns="write", format="json", h=_WRITE_POOL_COLUMNS)
        return self._sum_cat_write_pools(list(rows.body))

    def cluster_health(self) -> ClusterHealth:
        return ClusterHealth.from_response(self._call(self.client.cluster.health).body)

    def create_index(self, name: str, settings: dict, mappings: dict) -> None:
        self._call(self.client.indices.create, index=name, settings=settings, mappings=mappings)

    def delete_index(self, name: str) -> None:
        self._call(self.client.indices.delete, index=name, ignore_unavailable=True)

    def index_exists(self, name: str) -> bool:
        return bool(self._call(self.client.indices.exists, index=name))

    def get_mapping(self, name: str) -> dict:
        body = self._call(self.client.indices.get_mapping, index=name).body
        return next(iter(body.values()))["mappings"]

    def put_settings(self, name: str, settings: dict) -> None:
        self._call(self.client.indices.put_settings, index=name, settings={"index": settings})

    def get_settings(self, name: str) -> dict:
        body = self._call(self.client.indices.get_settings, index=name).body
        return next(iter(body.values()))["settings"]["index"]

    def refresh(self, name: str) -> None:
        self._call(self.client.indices.refresh, index=name)

    def update_aliases(self, actions: list[dict]) -> None:
        self._call(self.client.indices.update_aliases, actions=actions)

    def get_alias(self, alias: str) -> dict[str, dict]:
        try:
            body = self._call(self.client.indices.get_alias, name=alias).body
        except NotFoundError:
            return {}
        return {index: data.get("aliases", {}).get(alias, {}) for index, data in body.items()}

    def get(self, index: str, doc_id: str) -> dict | None:
        try:
            return self._call(self.client.get, index=index, id=doc_id).body
        except NotFoundError:
            return None

    def count(self, index: str, query: dict | None = None) -> int:
        kwargs = {"query": query} if query else {}
        return int(self._call(self.client.count, index=index, **kwargs)["count"])

    def search(self, index: str, body: dict) -> dict:
        return self._call(self.client.search, index=index, body=body).body

    def scan(self, index: str, query: dict | None = None, source: bool | list[str] = True, size: int = 1000) -> Iterator[dict]:
        body = {"query": query or {"match_all": {}}, "_source": source, "version": True}
        yield from helpers.scan(self.client, query=body, index=index, size=size, preserve_order=False)

    def mget(self, index: str, ids: list[str], source: bool | list[str] = True) -> dict[str, dict]:
        if not ids:
            return {}
        docs = [{"_id": doc_id, "_source": source} for doc_id in ids]
        body = self._call(self.client.mget, index=index, docs=docs).body
        return self._found_docs(index, body)
