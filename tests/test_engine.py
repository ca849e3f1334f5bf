"""The search engine adapter against the real node (OpenSearch by default;
SEARCH_ENGINE=elasticsearch SEARCH_URL=... runs the same tests on Elasticsearch)."""

import socket

import pytest

from catalog.blueprint import products_definition
from indexing.engines import BulkAction, EngineUnavailable, build_engine
from indexing.outcomes import Outcome, classify


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


def test_info_reports_engine_and_version(engine):
    info = engine.info()
    assert info.engine in ("opensearch", "elasticsearch")
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
    assert result.error_type == "strict_dynamic_mapping_exception"
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
