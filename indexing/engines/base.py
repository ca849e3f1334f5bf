"""The one interface the rest of searchsync uses to talk to a search cluster.

Nothing above this module knows whether it talks to OpenSearch or
Elasticsearch: adapters translate these calls to their client library and
normalise what comes back (bulk item outcomes, thread-pool stats).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import orjson


class EngineUnavailable(Exception):
    """The cluster could not be reached or did not answer in time."""


class UnsupportedServer(Exception):
    """The server answered, but it is not an engine/version this adapter supports."""


@dataclass(slots=True)
class BulkAction:
    """One write of a `_bulk` request, versioned externally.

    ``source`` is the document already serialised (the writer serialises once, to check its size,
    and the bulk body reuses those bytes); without it the document is serialised when sent.
    Never changed once made; not a frozen dataclass only because, made once per document on the
    consumer's hot path, a frozen one's constructor costs twice as much."""

    op: str  # "index" | "delete"
    index: str
    id: str
    version: int
    document: dict | None = None
    source: bytes | None = field(default=None, repr=False, compare=False)


def serialize_document(document: dict) -> bytes:
    """A document as the bulk body carries it."""
    try:
        return orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):  # e.g. an integer beyond 64 bits: the slow path copes
        return json.dumps(document, default=str).encode()


# What an action line and its separators add to a document's bytes in a bulk body, about.
_ACTION_LINE_BYTES = 100


def bulk_chunks(actions: list[BulkAction], chunk_size: int, max_bytes: int | None = None) -> list[list[BulkAction]]:
    """The requests ``actions`` go in: at most ``chunk_size`` actions each and, past a request's first
    action, at most ``max_bytes`` of body. A node refuses a body over its ``http.max_content_length``
    as a whole (413), which would fail every write in it for the size of a few."""
    chunks: list[list[BulkAction]] = []
    chunk: list[BulkAction] = []
    size = 0
    for action in actions:
        n = _ACTION_LINE_BYTES + (len(action.source) if action.source is not None else 0)
        if chunk and (len(chunk) >= chunk_size or (max_bytes and size + n > max_bytes)):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(action)
        size += n
    if chunk:
        chunks.append(chunk)
    return chunks


def bulk_body(actions: list[BulkAction]) -> bytes:
    """The NDJSON body of one `_bulk` request: an action line per write, the source line after an index."""
    lines = []
    for action in actions:
        lines.append(orjson.dumps({action.op: {"_index": action.index, "_id": action.id, "version": action.version,
                                                "version_type": "external"}}))
        if action.op == "index":
            lines.append(action.source if action.source is not None else serialize_document(action.document))
    lines.append(b"")
    return b"\n".join(lines)


# What an answer needs to resolve each item: the node leaves the rest (shards, seq_no, result) out.
BULK_FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason,items.*.error.caused_by.reason"


def _status(item: dict) -> int | None:
    """The status of one bulk answer item (``{"index": {"status": 201}}``), None if it has none."""
    for info in item.values():
        status = info.get("status")
        return status if isinstance(status, int) else None
    return None


@dataclass(slots=True)
class BulkItemResult:
    """What the cluster said about one action; status None = no answer. Never changed once made
    (one per document: slots, not frozen, for the cost of its constructor)."""

    action: BulkAction
    status: int | None
    error_type: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        if self.status is None:
            return False
        # Deleting a document the index never had is already the desired state.
        return 200 <= self.status < 300 or (
            self.action.op == "delete" and self.status == 404 and self.error_type in (None, "not_found")
        )


@dataclass(frozen=True)
class ThreadPoolStats:
    """The write thread pool summed over the cluster's nodes."""

    threads: int
    active: int
    queue: int
    queue_capacity: int  # -1 = unbounded
    rejected: int
    nodes: int = 1

    @property
    def queue_ratio(self) -> float:
        if self.queue_capacity <= 0:
            return 0.0
        return self.queue / self.queue_capacity


@dataclass(frozen=True)
class ClusterHealth:
    """The cluster's own health: green (every shard copy assigned), yellow (a replica missing),
    red (a primary missing: some writes and searches fail until it comes back)."""

    status: str
    nodes: int
    data_nodes: int
    active_shards: int
    unassigned_shards: int
    initializing_shards: int = 0
    relocating_shards: int = 0

    @classmethod
    def from_response(cls, body: dict) -> "ClusterHealth":
        return cls(status=str(body.get("status", "unknown")), nodes=int(body.get("number_of_nodes", 0)),
                   data_nodes=int(body.get("number_of_data_nodes", 0)),
                   active_shards=int(body.get("active_shards", 0)),
                   unassigned_shards=int(body.get("unassigned_shards", 0)),
                   initializing_shards=int(body.get("initializing_shards", 0)),
                   relocating_shards=int(body.get("relocating_shards", 0)))


def split_hosts(url: str) -> list[str]:
    """``SEARCH_URL`` names one node or several, comma-separated (``http://a:9200,http://b:9200``)."""
    hosts = [h.strip() for h in url.split(",") if h.strip()]
    if not hosts:
        raise ValueError("SEARCH_URL names no host")
    return hosts


def failover_options(hosts: list[str]) -> dict:
    """Client options shared by the adapters: requests go round-robin over the hosts, and one that
    does not answer (refused, reset, timed out) is marked dead for a while and the request is sent
    to the next one. Only "no answer" is retried on another node: an HTTP status is an answer, and
    what to do with it (a 429, a 503) is the pipeline's decision. Retrying a timed-out bulk on
    another node is safe because every write carries an external version."""
    several = len(hosts) > 1
    return {"max_retries": len(hosts) - 1, "retry_on_timeout": several, "retry_on_status": ()}


@dataclass(frozen=True)
class EngineInfo:
    engine: str
    distribution: str
    version: str
    cluster_name: str
    extra: dict = field(default_factory=dict)


class SearchEngine(ABC):
    """Adapter over one search cluster."""

    kind: str = ""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url
        self.hosts = split_hosts(url)
        self.timeout = timeout
        self.node_failures = 0  # requests a host did not answer (each sent on to the next host, if any)

    def _count_node_failures(self, pool: Any) -> None:
        """Count the client's "mark this host dead" decisions: how often a node did not answer."""
        mark_dead = pool.mark_dead

        def counted(node, *args, **kwargs):
            self.node_failures += 1
            return mark_dead(node, *args, **kwargs)

        pool.mark_dead = counted

    @property
    def bulk_timeout(self) -> str:
        """How long the cluster may wait for an unavailable primary before it answers an item with
        503: shorter than our request timeout, so a missing shard comes back as a per-item
        "not ready" answer for the pipeline to retry, not as a request that timed out."""
        return f"{max(1, int(self.timeout * 0.6))}s"

    def _bulk_params(self) -> dict:
        return {"timeout": self.bulk_timeout}

    # -- cluster -------------------------------------------------------------
    @abstractmethod
    def info(self) -> EngineInfo: ...

    @abstractmethod
    def write_thread_pool(self) -> ThreadPoolStats: ...

    @abstractmethod
    def cluster_health(self) -> ClusterHealth: ...

    # -- indices -------------------------------------------------------------
    @abstractmethod
    def create_index(self, name: str, settings: dict, mappings: dict) -> None: ...

    @abstractmethod
    def delete_index(self, name: str) -> None: ...

    @abstractmethod
    def index_exists(self, name: str) -> bool: ...

    @abstractmethod
    def get_mapping(self, name: str) -> dict: ...

    @abstractmethod
    def put_settings(self, name: str, settings: dict) -> None: ...

    @abstractmethod
    def get_settings(self, name: str) -> dict: ...

    @abstractmethod
    def refresh(self, name: str) -> None: ...

    # -- aliases -------------------------------------------------------------
    @abstractmethod
    def update_aliases(self, actions: list[dict]) -> None:
        """Apply every alias action in one atomic `_aliases` request."""

    @abstractmethod
    def get_alias(self, alias: str) -> dict[str, dict]:
        """Indices behind an alias, each with its alias definition; {} if none."""

    # -- documents -----------------------------------------------------------
    # The errors of a request that got no item answers (no answer at all, or an HTTP error for the whole body).
    request_errors: tuple[type[BaseException], ...] = ()

    @abstractmethod
    def _send_bulk(self, body: bytes) -> dict:
        """POST one prebuilt NDJSON body to `_bulk` (answer filtered to ``BULK_FILTER_PATH``)."""

    def bulk(self, actions: Iterable[BulkAction], chunk_size: int = 500, body: bytes | None = None,
             max_bytes: int | None = None, gate=None) -> list[BulkItemResult]:
        """Send versioned writes; one result per action, in order, never raising for item errors.

        The body is built here in one pass from bytes (documents the writer already serialised),
        not by the client's bulk helpers, which serialise every line through the client's
        serializer and decode the whole answer: those were a third of the consumer's CPU. The
        client still sends it (hosts, failover, timeouts), and the answer is filtered to what
        resolving an item needs. Requests hold at most ``chunk_size`` actions and ``max_bytes`` of
        body (``bulk_chunks``). ``body``, if given, is ``bulk_body(actions)`` built ahead by a caller
        overlapping it with an earlier request, for actions it found to fit one request
        (``writer.prebuild_body``): they are not split again. ``gate``, if given, is held while a request
        is on the wire and released before its answer is resolved into results: a writer with more
        threads than requests in flight sends its next request meanwhile (``BulkSink``)."""
        actions = list(actions)
        if body is not None and len(actions) <= chunk_size:
            chunks = [actions]
        else:
            body = None
            chunks = bulk_chunks(actions, chunk_size, max_bytes)
        results: list[BulkItemResult] = []
        for chunk in chunks:
            data = body if body is not None else bulk_body(chunk)
            try:
                with gate if gate is not None else nullcontext():
                    answer = self._send_bulk(data)
            except self.request_errors as exc:
                # The whole request failed before any item answer: every action of it is unresolved,
                # or has the request's HTTP status when the cluster refused the body as a whole.
                status = getattr(exc, "status_code", None)
                status = status if isinstance(status, int) else None
                results.extend(BulkItemResult(a, status, type(exc).__name__, str(exc)[:2000]) for a in chunk)
                continue
            items = answer.get("items") or []
            if len(items) != len(chunk):
                reason = f"bulk answer has {len(items)} items for {len(chunk)} actions"
                results.extend(BulkItemResult(a, None, "malformed_answer", reason) for a in chunk)
                continue
            if answer.get("errors") is False:
                # The usual answer: no item failed, so each one's status is all there is to read.
                results.extend([BulkItemResult(a, _status(item)) for a, item in zip(chunk, items)])
                continue
            results.extend(self._item_result(a, item) for a, item in zip(chunk, items))
        return results

    @abstractmethod
    def get(self, index: str, doc_id: str) -> dict | None:
        """The stored document with `_version` and `_source`, or None."""

    @abstractmethod
    def count(self, index: str, query: dict | None = None) -> int: ...

    @abstractmethod
    def search(self, index: str, body: dict) -> dict: ...

    @abstractmethod
    def scan(self, index: str, query: dict | None = None, source: bool | list[str] = True, size: int = 1000) -> Iterator[dict]:
        """Every matching hit (``_id``, ``_version``, ``_source``), streamed in pages."""

    @abstractmethod
    def mget(self, index: str, ids: list[str], source: bool | list[str] = True) -> dict[str, dict]:
        """The stored documents among ``ids`` (``_id``, ``_version``, ``_source``), by id; absent ids are left out.

        Real-time like ``get``: it sees a write before the next refresh, which a
        search would not. Raises if the cluster could not answer for some id.
        """

    def search_after(self, index: str, sort_field: str, query: dict | None = None,
                     source: bool | list[str] = False, size: int = 1000) -> Iterator[dict]:
        """Every matching hit (with ``_version``) in ascending ``sort_field`` order, page by page.

        Paged with ``search_after`` rather than a scroll: nothing is held open on
        the cluster, so a reader that dies or sleeps (a throttled one) leaks no
        context. ``sort_field`` must be a unique keyword of the documents.
        """
        after = None
        while True:
            body = {"query": query or {"match_all": {}}, "sort": [{sort_field: "asc"}], "size": size,
                    "_source": source, "version": True, "track_total_hits": False}
            if after is not None:
                body["search_after"] = after
            hits = self.search(index, body)["hits"]["hits"]
            yield from hits
            if len(hits) < size:
                return
            after = hits[-1]["sort"]

    # -- shared helpers ------------------------------------------------------
    @staticmethod
    def _item_result(action: BulkAction, item: dict) -> BulkItemResult:
        (info,) = item.values()
        status = info.get("status")
        if not isinstance(status, int):
            status = None
        error = info.get("error")
        if not error:
            return BulkItemResult(action=action, status=status)
        error_type = reason = None
        if isinstance(error, dict):
            error_type = error.get("type")
            reason = error.get("reason")
            caused = error.get("caused_by")
            if isinstance(caused, dict) and caused.get("reason"):
                reason = f"{reason}: {caused.get('reason')}"
        else:
            error_type, reason = "transport_error", str(error)[:2000]
        return BulkItemResult(action=action, status=status, error_type=error_type, reason=reason)

    @staticmethod
    def _found_docs(index: str, body: dict) -> dict[str, dict]:
        """The found documents of an ``_mget`` answer; an error on any id fails the whole call,
        because callers decide from absence and must not take a failed lookup for one."""
        found = {}
        for doc in body.get("docs", []):
            if doc.get("error"):
                raise RuntimeError(f"_mget on {index} failed for id {doc.get('_id')}: {doc['error']}")
            if doc.get("found"):
                found[doc["_id"]] = doc
        return found

    @staticmethod
    def _sum_cat_write_pools(rows: list[dict]) -> ThreadPoolStats:
        """Sum `_cat/thread_pool/write` rows (one per node) into one figure."""

        def num(value) -> int:
            try:
                return int(value)
            except (TypeError, ValueError):
                return 0

        capacities = [num(r.get("queue_size")) for r in rows]
        return ThreadPoolStats(
            threads=sum(num(r.get("size")) for r in rows),
            active=sum(num(r.get("active")) for r in rows),
            queue=sum(num(r.get("queue")) for r in rows),
            queue_capacity=-1 if any(c < 0 for c in capacities) else sum(capacities),
            rejected=sum(num(r.get("rejected")) for r in rows),
            nodes=len(rows),
        )
