"""Physical indices of a blueprint never clobber data this database does not know about."""

from catalog.blueprint import ensure_products_blueprint
from indexing.blueprints.indices import ensure_live_index
from indexing.engines import BulkAction


def test_an_unknown_index_with_the_same_name_is_left_alone(transactional_db, engine, unique):
    name = f"bp-{unique}"
    blueprint = ensure_products_blueprint(name=name)
    stranger = f"{name}_v1"  # e.g. another installation sharing the cluster, or a restored database
    engine.create_index(stranger, blueprint.settings, blueprint.mappings)
    try:
        doc = {"id": "1", "tenant_id": "t", "title": "theirs", "price_minor": 1, "available_qty": 1, "version": 1}
        engine.bulk([BulkAction("index", stranger, "1", 1, doc)])
        live = ensure_live_index(blueprint, engine)
        assert live.name == f"{name}_v2"
        assert engine.get(stranger, "1")["_source"]["title"] == "theirs"
        assert set(engine.get_alias(blueprint.read_alias)) == {live.name}
    finally:
        for index in (stranger, f"{name}_v2"):
            engine.delete_index(index)
