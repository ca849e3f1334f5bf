"""A blueprint declared in files and fed by Debezium's table changes, over a table in a source
database of its own: the application calls nothing of searchsync's. Refused when table changes
cannot feed it (a view, deletes without the version they delete); streamed from that database's
WAL through a connector whose slot is watched there; each streamed document equal to the one a
backfill reads for the same row; and the outbox router runs per source database too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.db import connections

from backfills import services as backfills
from backfills.models import Backfill
from indexing import reconciliation
from indexing.blueprints.relations import DeclarationError, declared_builder, declared_source
from indexing.control import connectors, declared
from indexing.core import source_databases
from indexing.core.topics import topic_for
from indexing.models import EventFormat, IndexBlueprint
from indexing.outbox import sql_install
from tests.helpers import pipeline, read_topic, wait_until
from tests.source_databases import psql

# Kafka Connect is shared by the test workers, and one drill stops it: its users run in one worker.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, databases=["default", "replica"]),
              pytest.mark.xdist_group("connect")]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "orders"


@pytest.fixture
def shop(source_db, settings):
    """The orders table of examples/orders in a source database of the test's own."""
    source, dbname = source_db
    settings.SEARCHSYNC_SOURCE_DATABASES = {"default": source_databases.get("default"), source.name: source}
    run(dbname, (EXAMPLE / "schema.sql").read_text())
    return source, dbname


def run(dbname: str, script: str) -> None:
    done = psql(dbname, script)
    assert done.returncode == 0, done.stderr


def folder(tmp_path: Path, database: str, **source_changes) -> Path:
    directory = tmp_path / "blueprint"
    shutil.copytree(EXAMPLE / "blueprint", directory, dirs_exist_ok=True)
    declaration = json.loads((directory / "blueprint.json").read_text())
    declaration["feed"] = "table_changes"
    declaration["source"].update({"database": database, **source_changes})
    (directory / "blueprint.json").write_text(json.dumps(declaration))
    return directory


def table_state(alias: str) -> dict[str, tuple[int, str, int]]:
    with connections[alias].cursor() as cur:
        cur.execute("SELECT id::text, version, status, total_minor FROM orders")
        return {pk: (version, status, total) for pk, version, status, total in cur.fetchall()}


def index_state(engine, index: str) -> dict[str, tuple[int, str, int]]:
    engine.refresh(index)
    return {h["_id"]: (h["_version"], h["_source"]["status"], h["_source"]["total"])
            for h in engine.scan(index, query={"term": {"deleted": False}}) if h["_source"].get("status")}


def wait_equal(engine, alias: str, index: str, timeout: float = 180.0) -> None:
    wait_until(lambda: table_state(alias) == index_state(engine, index), timeout=timeout, interval=0.5,
               message=f"{index} equal to the orders table")


def test_propose_refuses_what_table_changes_cannot_feed(shop, tmp_path):
    source, dbname = shop
    with pytest.raises(DeclarationError, match=r"run ALTER TABLE public\.orders REPLICA IDENTITY FULL"):
        declared.propose("orders-cdc", folder(tmp_path, source.name), reason="test")
    run(dbname, "ALTER TABLE orders REPLICA IDENTITY FULL; CREATE VIEW orders_view AS SELECT * FROM orders")
    with pytest.raises(DeclarationError, match="orders_view is a view; only a table's changes are in the WAL"):
        declared.propose("orders-cdc", folder(tmp_path, source.name, relation="orders_view"), reason="test")
    directory = folder(tmp_path, source.name)
    declaration = json.loads((directory / "blueprint.json").read_text())
    (directory / "blueprint.json").write_text(json.dumps({**declaration, "feed": "wal"}))
    with pytest.raises(DeclarationError, match="feed is outbox or table_changes, not 'wal'"):
        declared.propose("orders-cdc", directory, reason="test")
    assert not IndexBlueprint.objects.filter(name="orders-cdc").exists()


def test_table_changes_of_a_source_database_stream_into_the_index_as_a_backfill_reads_them(
        shop, tmp_path, unique, isolated_pipeline, engine, debezium_connector, eager_celery, admin_client):
    source, dbname = shop
    # Rows written before the connector exists come in with its snapshot.
    run(dbname, "ALTER TABLE orders REPLICA IDENTITY FULL;"
                "INSERT INTO orders (tenant_id, customer, total_minor, items, note) "
                "SELECT 'acme', 'Ada ' || g, g * 100, 1 + g % 5, 'internal' FROM generate_series(1, 150) g")
    blueprint, _ = declared.propose(f"orders-cdc-{unique}", folder(tmp_path, source.name), reason="test")
    declared.enable(blueprint)
    blueprint.refresh_from_db()
    assert blueprint.event_format == EventFormat.DEBEZIUM_TABLE
    assert blueprint.topic == f"test-{unique}.order.cdc.public.orders"
    index = blueprint.live_index().name

    (wanted,) = [w for w in connectors.wanted_connectors() if w.name.endswith(blueprint.name)]
    assert (wanted.source, wanted.table) == (source.name, "public.orders")
    assert wanted.config["database.dbname"] == connections[source.alias].settings_dict["NAME"]
    connectors.ensure_publication(wanted.publication, wanted.table, wanted.source)
    debezium_connector("table", wanted.config, source=source.name)
    try:
        with pipeline(blueprint, relay=False):
            wait_equal(engine, source.alias, index)
            # Any application, any language: plain SQL, several transactions, no searchsync_emit.
            run(dbname, "UPDATE orders SET status = 'paid' WHERE id % 3 = 0;"
                        "UPDATE orders SET status = 'shipped' WHERE id % 6 = 0;"
                        "INSERT INTO orders (tenant_id, customer, total_minor, items) "
                        "SELECT 'acme', 'Grace ' || g, g, 2 FROM generate_series(1, 40) g;"
                        "DELETE FROM orders WHERE id % 10 = 7;")
            wait_equal(engine, source.alias, index)
            gone = engine.get(index, "7")["_source"]
            assert gone["deleted"] is True and gone["version"] == 2  # the deleted row's version + 1

        # The slot is watched in the source database that holds it.
        slot = next(s for s in connectors.replication_slots() if s.name == wanted.slot)
        assert slot.source == source.name and slot.active
        page = admin_client.get("/partials/indices/").content.decode()
        assert f'data-slot="{wanted.slot}" data-source="{source.name}"' in page
        assert f"{source.name}.orders (key id, version version, fed by Debezium table changes)" in \
            admin_client.get("/blueprints/").content.decode()

        # A streamed document is the document a row read builds: same fields, same version.
        rows = declared_source(blueprint).events_for_ids(list(table_state(source.alias)), using=source.alias)
        build = declared_builder(blueprint)
        streamed = engine.mget(index, [e.entity_id for e in rows])
        for event in rows:
            assert streamed[event.entity_id]["_source"] == build(event), event.entity_id
        assert reconciliation.reconcile(blueprint, dry_run=True).drift == 0

        # A rebuild reads the same rows on the source database and gives the same index.
        backfill = backfills.start_build(blueprint, parallelism=1)
        backfill.refresh_from_db()
        assert backfill.status == Backfill.Status.COMPLETED and backfill.rows_total == 150 + 40 - 19
        wait_equal(engine, source.alias, backfill.target_index.name, timeout=60)
    finally:
        connectors.drop_publication(wanted.publication, wanted.source)


def test_the_outbox_router_runs_in_each_source_database_that_has_the_outbox(
        source_db, settings, isolated_pipeline, debezium_connector):
    source, dbname = source_db
    settings.SEARCHSYNC_SOURCE_DATABASES = {"default": source_databases.get("default"), source.name: source}
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "PUBLISHER": "debezium"}
    assert [w.source for w in connectors.wanted_connectors()] == ["default"]  # no outbox there yet
    sql_install.install(source)
    routers = {w.source: w for w in connectors.wanted_connectors()}
    assert set(routers) == {"default", source.name}
    assert routers["default"].slot != routers[source.name].slot  # slot names are per server, not per database
    router = routers[source.name]
    connectors.ensure_publication(router.publication, router.table, router.source)
    debezium_connector("outbox", router.config, source=source.name)
    run(dbname, "BEGIN; SELECT searchsync_emit('order', '42', 'acme', 3, '{\"status\": \"placed\"}'); COMMIT;")
    (event,) = [m["value"] for m in read_topic(topic_for("order"), 1)]
    assert (event["entity_id"], event["version"], event["event_type"]) == ("42", 3, "ORDER_UPSERT")
    assert event["payload"] == {"status": "placed"}
