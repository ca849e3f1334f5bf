"""Invariant 4: deletes converge, and a stale upsert arriving late cannot resurrect a document."""

from catalog import services
from catalog.blueprint import ensure_products_blueprint
from indexing.blueprints.indices import ensure_live_index
from indexing.engines import BulkAction
from indexing.core.topics import ensure_topic
from tests.helpers import pipeline, wait_until
from tests.kafka_helpers import event, produce


def _search_ids(engine, alias):
    engine.refresh(alias)
    return sorted(h["_id"] for h in engine.search(alias, {"query": {"match_all": {}}, "size": 100})["hits"]["hits"])


def test_tombstone_hides_the_document_and_beats_a_late_stale_upsert(products_blueprint, engine):
    index = products_blueprint.live_index().name
    with pipeline(products_blueprint):
        keep = services.create_product(tenant_id="t", title="Keep", price_minor=1, available_qty=1)
        gone = services.create_product(tenant_id="t", title="Gone", price_minor=1, available_qty=1)
        services.update_product(gone.pk, title="Gone v2")
        delete_version = services.delete_product(gone.pk)
        wait_until(lambda: (engine.get(index, str(gone.pk)) or {}).get("_version") == delete_version)
        # "keep" may sit in another partition, indexed a batch later than the delete.
        wait_until(lambda: engine.get(index, str(keep.pk)) is not None, message="the kept product indexed")
        # The read alias hides the tombstone; the physical index keeps it with its version.
        assert _search_ids(engine, products_blueprint.read_alias) == [str(keep.pk)]
        stored = engine.get(index, str(gone.pk))
        assert stored["_source"]["deleted"] is True

        # Much later (long after any gc_deletes window), an old upsert is replayed: it must lose.
        produce(products_blueprint.topic, [(str(gone.pk), event(gone.pk, 2, title="Resurrected?"))])
        from indexing.core import stats

        wait_until(lambda: stats.counters(products_blueprint.name).get("stale", 0) >= 1, message="stale upsert rejected")
    assert engine.get(index, str(gone.pk))["_source"]["deleted"] is True
    assert _search_ids(engine, products_blueprint.read_alias) == [str(keep.pk)]


def test_hard_delete_mode_raises_gc_deletes_so_late_upserts_stay_dead(transactional_db, isolated_pipeline, unique, engine):
    blueprint = ensure_products_blueprint(name=f"hard-{unique}", delete_mode="hard", hard_delete_gc_deletes="24h")
    index = ensure_live_index(blueprint, engine).name
    control = f"control-{unique}"
    try:
        assert engine.get_settings(index)["gc_deletes"] == "24h"
        # The control index shows the failure being guarded against: with a tombstone window of 0 s,
        # the versioned delete is forgotten at once and a stale upsert resurrects the document.
        engine.create_index(control, {**blueprint.settings, "gc_deletes": "0s"}, blueprint.mappings)
        ensure_topic(blueprint.topic)
        with pipeline(blueprint):
            product = services.create_product(tenant_id="t", title="Hard", price_minor=1, available_qty=1)
            services.delete_product(product.pk)
            from indexing.core import stats

            # Both the create and the versioned delete went through (a missing document alone
            # could also mean the create was not indexed yet).
            def resolved():
                counters = stats.counters(blueprint.name)
                # In one batch the create is superseded by the delete; in two, both are indexed.
                return counters.get("indexed", 0) + counters.get("superseded", 0) >= 2

            wait_until(resolved, message="create and delete resolved")
            assert engine.get(index, str(product.pk)) is None
            produce(blueprint.topic, [(str(product.pk), event(product.pk, 1, title="Resurrected?"))])
            wait_until(lambda: stats.counters(blueprint.name).get("stale", 0) >= 1, message="stale upsert rejected")
        assert engine.get(index, str(product.pk)) is None

        doc = {"id": "1", "tenant_id": "t", "title": "x", "price_minor": 1, "available_qty": 1, "version": 1}
        engine.bulk([BulkAction("index", control, "1", 1, doc)])
        engine.bulk([BulkAction("delete", control, "1", 2)])
        # Deleted versions are pruned on refresh once gc_deletes has passed; retry until it happened.
        def resurrected():
            engine.refresh(control)
            (late,) = engine.bulk([BulkAction("index", control, "1", 1, doc)])
            return late.status == 201

        wait_until(resurrected, timeout=30, interval=0.5,
                   message="with gc_deletes=0s the stale upsert resurrects the document")
    finally:
        engine.delete_index(control)
        for i in blueprint.indices.all():
            engine.delete_index(i.name)
