"""The search engine adapter against the real node: OpenSearch 2.19 by default;
`make test-elasticsearch` / `make test-opensearch3` (SEARCH_ENGINE, SEARCH_URL) run the same
tests on Elasticsearch 7.17 and OpenSearch 3.x. Each behaviour that differs between engines
or client libraries is pinned here, so every engine is held to the same contract."""

import contextlib
import socket
import threading

import pytest

from catalog.blueprint import products_definition
from indexing.engines import BulkAction, EngineUnavailable, UnsupportedServer, build_engine
from indexing.pipeline.outcomes import Outcome, classify


@pytest.fixture
def index(engine, unique):
    name = f"engine-test-{unique}"
    definition = products_definition()
    engine.create_index(name, definition["settings"], definition["mappings"])
    yield name
    engine.delete_index(name)


def doc(i, title="Ergonomic Office Chair", **extra):
    return {"id": str(i), "tenant_id": "t1", "title": title, "price_minor": 100 * i, "available_qty": i,
            "version": 1, "deleted": False, **extra}


def test_info_reports_engine_and_version(engine, settings):
    info = engine.info()
    assert info.engine == settings.SEARCH_ENGINE
    assert info.distribution == ("elasticsearch" if info.engine == "elasticsearch" else "opensearch")
    assert info.version[0].isdigit()


def test_seed_mapping_is_strict_and_autocomplete_works(engine, index):
    mapping = engine.get_mapping(index)
    assert mapping["dynamic"] == "strict"
    results = engine.bulk([BulkAction("index", index, "1", 1, doc(1)),
                           BulkAction("index", index, "2", 1, doc(2, title="Crème Brûlée Torch"))])
    assert [r.status for r in results] == [201, 201]
    engine.refresh(index)
    # edge_ngram + lowercase + asciifolding: a lowercase prefix without accents finds the accented title.
    hits = engine.search(index, {"query": {"match": {"title": "creme"}}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["2"]
    hits = engine.search(index, {"query": {"match": {"title": "erg"}}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]


def test_unmapped_field_is_rejected_permanently(engine, index):
    (result,) = engine.bulk([BulkAction("index", index, "1", 1, doc(1, colour="red"))])
    assert result.status == 400
    # Elasticsearch 8+ may name it document_parsing_exception; 7.17 and OpenSearch use this one.
    assert result.error_type in ("strict_dynamic_mapping_exception", "document_parsing_exception")
    assert classify(result) is Outcome.PERMANENT


def test_external_version_rejects_older_and_equal_versions(engine, index):
    assert engine.bulk([BulkAction("index", index, "7", 5, doc(7))])[0].status == 201
    older, equal, newer = engine.bulk([
        BulkAction("index", index, "7", 3, doc(7, title="old")),
        BulkAction("index", index, "7", 5, doc(7, title="same")),
        BulkAction("index", index, "7", 6, doc(7, title="new")),
    ])
    assert (older.status, equal.status, newer.status) == (409, 409, 200)
    assert classify(older) is Outcome.STALE
    stored = engine.get(index, "7")
    assert stored["_version"] == 6 and stored["_source"]["title"] == "new"


def test_versioned_delete_and_missing_delete(engine, index):
    engine.bulk([BulkAction("index", index, "1", 2, doc(1))])
    stale_delete, delete, missing = engine.bulk([
        BulkAction("delete", index, "1", 1),
        BulkAction("delete", index, "1", 3),
        BulkAction("delete", index, "404", 1),
    ])
    assert stale_delete.status == 409
    assert delete.ok and missing.ok  # deleting what was never there is already the desired state
    assert engine.get(index, "1") is None


def test_alias_swap_is_one_atomic_request(engine, unique):
    definition = products_definition()
    a, b, alias = f"swap-a-{unique}", f"swap-b-{unique}", f"swap-alias-{unique}"
    for name in (a, b):
        engine.create_index(name, definition["settings"], definition["mappings"])
    try:
        engine.update_aliases([{"add": {"index": a, "alias": alias}}])
        assert set(engine.get_alias(alias)) == {a}
        engine.update_aliases([{"remove": {"index": a, "alias": alias}}, {"add": {"index": b, "alias": alias}}])
        assert set(engine.get_alias(alias)) == {b}
        # One bad action fails the whole request: the alias is left exactly as it was.
        with pytest.raises(Exception):
            engine.update_aliases([{"remove": {"index": b, "alias": alias}},
                                   {"add": {"index": f"missing-{unique}", "alias": alias}}])
        assert set(engine.get_alias(alias)) == {b}
    finally:
        engine.delete_index(a)
        engine.delete_index(b)
    assert engine.get_alias(alias) == {}


def test_write_thread_pool_stats(engine):
    pool = engine.write_thread_pool()
    assert pool.nodes >= 1
    assert pool.threads >= 1
    assert pool.queue_capacity > 0
    assert 0.0 <= pool.queue_ratio <= 1.0


def test_count_and_scan(engine, index):
    engine.bulk([BulkAction("index", index, str(i), i, doc(i)) for i in range(1, 31)])
    engine.refresh(index)
    assert engine.count(index) == 30
    assert engine.count(index, {"range": {"price_minor": {"gte": 1000}}}) == 21
    hits = list(engine.scan(index, size=7))
    assert sorted(int(h["_id"]) for h in hits) == list(range(1, 31))
    assert all(h["_version"] == int(h["_id"]) for h in hits)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_cluster_is_reported_not_raised_by_bulk(engine):
    dead = build_engine(engine.kind, f"http://127.0.0.1:{_closed_port()}", timeout=2)
    with pytest.raises(EngineUnavailable):
        dead.info()
    results = dead.bulk([BulkAction("index", "x", "1", 1, {"a": 1}), BulkAction("delete", "x", "2", 1)])
    assert [r.status for r in results] == [None, None]
    assert all(classify(r) is Outcome.TRANSIENT for r in results)


@contextlib.contextmanager
def _silent_server():
    """A port that accepts connections and never answers: a hung node."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def test_a_node_that_does_not_answer_in_time_is_unavailable_not_an_error(engine):
    # The elasticsearch client's ConnectionTimeout is not a ConnectionError (opensearch-py's is):
    # the adapter must turn both into EngineUnavailable, or a hung node would crash the
    # backpressure probe and the freshness canary instead of pausing them.
    with _silent_server() as port:
        hung = build_engine(engine.kind, f"http://127.0.0.1:{port}", timeout=0.5)
        with pytest.raises(EngineUnavailable):
            hung.write_thread_pool()
        results = hung.bulk([BulkAction("index", "x", "1", 1, {"a": 1})])
    assert [r.status for r in results] == [None]
    assert classify(results[0]) is Outcome.TRANSIENT


def test_several_hosts_spread_requests_and_skip_nodes_that_do_not_answer(engine, index, settings):
    # SEARCH_URL may name several nodes: one refusing connections and one hung are skipped, each
    # request (reads and versioned bulks alike) lands on the node that answers.
    with _silent_server() as hung_port:
        url = f"http://127.0.0.1:{_closed_port()},{settings.SEARCH_URL},http://127.0.0.1:{hung_port}"
        several = build_engine(engine.kind, url, timeout=1)
        assert len(several.hosts) == 2 + len(settings.SEARCH_URL.split(","))
        for i in range(1, 7):
            assert several.info().engine == engine.kind
            results = several.bulk([BulkAction("index", index, str(i), 1, doc(i))])
            assert [r.status for r in results] == [201]
    assert several.node_failures >= 2
    engine.refresh(index)
    assert engine.count(index) == 6


def test_cluster_health_is_reported(engine, unique):
    index = f"health-{unique}"
    before = engine.cluster_health().active_shards
    engine.create_index(index, {"number_of_shards": 2, "number_of_replicas": 0}, {"properties": {}})
    try:
        health = engine.cluster_health()
        assert health.status in ("green", "yellow", "red")
        assert health.nodes >= 1 and health.data_nodes >= 1
        assert health.active_shards >= before + 2  # the new index's two primaries count
    finally:
        engine.delete_index(index)


def test_get_is_real_time_and_search_sees_writes_after_refresh(engine, unique):
    definition = products_definition()
    name = f"engine-rt-{unique}"
    engine.create_index(name, {**definition["settings"], "refresh_interval": "-1"}, definition["mappings"])
    try:
        engine.bulk([BulkAction("index", name, "1", 1, doc(1))])
        assert engine.get(name, "1")["_version"] == 1
        assert set(engine.mget(name, ["1", "2"])) == {"1"}
        assert engine.search(name, {"query": {"match_all": {}}})["hits"]["hits"] == []
        engine.refresh(name)
        assert [h["_id"] for h in engine.search(name, {"query": {"match_all": {}}})["hits"]["hits"]] == ["1"]
    finally:
        engine.delete_index(name)


def test_filtered_read_alias_hides_tombstones_and_write_alias_writes(engine, index, unique):
    read, write = f"read-{unique}", f"write-{unique}"
    engine.update_aliases([
        {"add": {"index": index, "alias": read, "filter": {"bool": {"must_not": {"term": {"deleted": True}}}}}},
        {"add": {"index": index, "alias": write, "is_write_index": True}},
    ])
    engine.bulk([BulkAction("index", write, "1", 1, doc(1)), BulkAction("index", write, "2", 1, doc(2, deleted=True))])
    engine.refresh(index)
    assert engine.count(index) == 2
    assert engine.count(read) == 1
    assert [h["_id"] for h in engine.search(read, {"query": {"match_all": {}}})["hits"]["hits"]] == ["1"]
    assert "filter" in engine.get_alias(read)[index]
    assert engine.get_alias(write)[index].get("is_write_index") is True


def test_gc_deletes_setting_round_trips(engine, unique):
    definition = products_definition()
    name = f"engine-gc-{unique}"
    engine.create_index(name, {**definition["settings"], "gc_deletes": "24h"}, definition["mappings"])
    try:
        assert engine.get_settings(name)["gc_deletes"] == "24h"
        engine.put_settings(name, {"gc_deletes": "90s", "refresh_interval": "-1"})
        got = engine.get_settings(name)
        assert (got["gc_deletes"], got["refresh_interval"]) == ("90s", "-1")
    finally:
        engine.delete_index(name)


def test_elasticsearch_adapter_names_a_server_without_the_product_header_unsupported():
    # What an Elasticsearch older than 7.14 (or another product) looks like to the 8.x client.
    import json
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Old(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"cluster_name": "old", "version": {"number": "7.10.2"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Old)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(UnsupportedServer, match="7.17, 8.x and 9.x"):
            build_engine("elasticsearch", f"http://127.0.0.1:{server.server_address[1]}", timeout=5).info()
    finally:
        server.shutdown()
        server.server_close()
