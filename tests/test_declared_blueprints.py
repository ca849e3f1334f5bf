"""Blueprints declared in files over a table no Django model knows: refused with the exact problem,
synced from rows written in plain SQL, backfilled while live writes race it, reconciled after drift
injected with raw SQL, and cut over through the guards."""

from __future__ import annotations

import json
import random
import shutil
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections

from backfills import services as backfills
from backfills.models import Backfill
from indexing import reconciliation
from indexing.blueprints.contracts import event_type_for
from indexing.blueprints.relations import DeclarationError
from indexing.control import declared
from indexing.models import IndexBlueprint
from tests.helpers import pipeline, wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "orders"


# --- the table, written as any application in any language would ------------------------------


@pytest.fixture
def orders_table(transactional_db, unique):
    table = f"orders_{unique}"
    with connection.cursor() as cur:
        cur.execute((EXAMPLE / "schema.sql").read_text().replace("orders", table))
    yield table
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table} CASCADE; DROP FUNCTION IF EXISTS {table}_bump_version()")


def folder(tmp_path: Path, table: str, **source_changes) -> Path:
    directory = tmp_path / "blueprint"
    shutil.copytree(EXAMPLE / "blueprint", directory, dirs_exist_ok=True)
    declaration = json.loads((directory / "blueprint.json").read_text())
    declaration["source"].update({"relation": table, **source_changes})
    (directory / "blueprint.json").write_text(json.dumps(declaration))
    return directory


@pytest.fixture
def orders_blueprint(orders_table, isolated_pipeline, unique, engine, tmp_path):
    blueprint, _ = declared.propose(f"orders-{unique}", folder(tmp_path, orders_table), reason="test", by="test")
    declared.enable(blueprint)
    blueprint.refresh_from_db()
    yield blueprint
    for index in blueprint.indices.all():
        engine.delete_index(index.name)


OUTBOX_INSERT = """INSERT INTO transactional_outbox (aggregate_type, aggregate_id, event_type, payload, version, tenant_id)
                   SELECT 'order', id::text, '{upsert}', to_jsonb(o), version, tenant_id FROM o"""


def sql_create(table: str, n: int, tenant: str = "acme") -> None:
    """n orders and their events in one statement, one transaction: plain SQL, no searchsync code."""
    with connection.cursor() as cur:
        cur.execute(f"""WITH o AS (INSERT INTO {table} (tenant_id, customer, total_minor, items, note)
                                   SELECT %s, 'Ada ' || g, g * 100, 1 + g %% 5, 'internal' FROM generate_series(1, %s) g
                                   RETURNING *) """ + OUTBOX_INSERT.format(upsert=event_type_for("order", False)),
                    [tenant, n])


def sql_update(table: str, order_id: int, status: str) -> None:
    with connection.cursor() as cur:
        cur.execute(f"WITH o AS (UPDATE {table} SET status = %s WHERE id = %s RETURNING *) "
                    + OUTBOX_INSERT.format(upsert=event_type_for("order", False)), [status, order_id])


def table_state(table: str) -> dict[str, tuple[int, str, int]]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT id::text, version, status, total_minor FROM {table}")
        return {pk: (version, status, total) for pk, version, status, total in cur.fetchall()}


def index_state(engine, index: str) -> dict[str, tuple[int, str, int]]:
    engine.refresh(index)
    return {h["_id"]: (h["_version"], h["_source"]["status"], h["_source"]["total"])
            for h in engine.scan(index, query={"term": {"deleted": False}}) if h["_source"].get("status")}


def wait_equal(engine, table: str, index: str, timeout: float = 180.0) -> None:
    wait_until(lambda: table_state(table) == index_state(engine, index), timeout=timeout, interval=0.5,
               message=f"{index} equal to {table}")


# --- refusals name the exact problem ----------------------------------------------------------------


@pytest.mark.parametrize("change, problem", [
    ({"key": "order_no"}, "source.key: orders_* has no column 'order_no'"),
    ({"relation": "no_such_orders"}, "relation 'no_such_orders' does not exist in source database 'default'"),
    ({"version": "status"}, "source.version: column 'status' is text, not an integer"),
    ({"omit": []}, "columns ['note'] of orders_* have no field in the strict mapping"),
    ({"database": "shop"}, "no source database 'shop'"),
])
def test_propose_refuses_a_folder_that_cannot_work_with_the_exact_problem(orders_table, tmp_path, unique, change,
                                                                          problem):
    with pytest.raises(CommandError) as refused:
        call_command("blueprints", "propose", f"orders-{unique}", "--from", str(folder(tmp_path, orders_table, **change)))
    assert problem.replace("orders_*", orders_table) in str(refused.value)
    assert not IndexBlueprint.objects.filter(name=f"orders-{unique}").exists()  # nothing half-made


def test_a_folder_without_its_mapping_is_refused(tmp_path, orders_table):
    directory = folder(tmp_path, orders_table)
    (directory / "mapping.json").unlink()
    with pytest.raises(DeclarationError, match="mapping.json is missing"):
        declared.propose("orders-nomap", directory, reason="test")


# --- live sync, from rows written in SQL -------------------------------------------------------------


def test_rows_written_in_plain_sql_become_searchable_as_declared(orders_blueprint, orders_table, engine, admin_client):
    assert orders_blueprint.declared_from.endswith("blueprint") and orders_blueprint.enabled
    assert orders_blueprint.live_index() is not None
    page = admin_client.get("/blueprints/").content.decode()
    assert f"declared in files: default.{orders_table}" in page and orders_blueprint.declared_from in page
    sql_create(orders_table, 20)
    with pipeline(orders_blueprint):
        wait_equal(engine, orders_table, orders_blueprint.live_index().name, timeout=60)
        sql_update(orders_table, 3, "shipped")
        wait_equal(engine, orders_table, orders_blueprint.live_index().name, timeout=60)
    document = engine.get(orders_blueprint.live_index().name, "3")["_source"]
    assert document["status"] == "shipped" and document["version"] == 2
    assert document["total"] == 300 and "total_minor" not in document and "note" not in document  # renamed, omitted
    hits = engine.search(orders_blueprint.read_alias, {"query": {"match": {"customer": "Ada 3"}}})["hits"]["hits"]
    assert hits and hits[0]["_id"] == "3"


# --- a backfill of the relation races live writes -----------------------------------------------------


def test_a_backfill_of_fifty_thousand_rows_races_live_sql_writes_and_converges(orders_blueprint, orders_table,
                                                                             engine, eager_celery):
    sql_create(orders_table, 50_000)
    rng = random.Random(22)
    stop = threading.Event()

    def writer():
        try:
            while not stop.is_set():
                sql_update(orders_table, rng.randint(1, 50_000), rng.choice(["paid", "shipped", "returned"]))
        finally:
            connections.close_all()

    with pipeline(orders_blueprint):
        racing = threading.Thread(target=writer)
        racing.start()
        try:
            backfill = backfills.start_build(orders_blueprint, parallelism=2)
        finally:
            stop.set()
            racing.join(60)
        backfill.refresh_from_db()
        assert backfill.status == Backfill.Status.COMPLETED and backfill.rows_total == 50_000
        wait_equal(engine, orders_table, backfill.target_index.name)
        wait_equal(engine, orders_table, orders_blueprint.live_index().name)


# --- reconciliation repairs drift injected behind the pipeline's back ------------------------------------


def test_reconciliation_finds_and_repairs_drift_injected_with_raw_sql(orders_blueprint, orders_table, engine):
    sql_create(orders_table, 30)
    index = orders_blueprint.live_index().name
    with pipeline(orders_blueprint):
        wait_equal(engine, orders_table, index, timeout=60)
        with connection.cursor() as cur:
            cur.execute(f"UPDATE {orders_table} SET status = 'lost' WHERE id IN (1, 2)")  # stale: no event
            cur.execute(f"INSERT INTO {orders_table} (tenant_id, customer, total_minor, items) "
                        "VALUES ('acme', 'Unseen', 5, 1)")  # missing: no event
            cur.execute(f"DELETE FROM {orders_table} WHERE id = 4")  # orphaned: no event
        report = reconciliation.reconcile(orders_blueprint)
        assert (report.stale, report.missing, report.orphaned) == (2, 1, 1), report.error
        wait_equal(engine, orders_table, index, timeout=60)
    assert reconciliation.reconcile(orders_blueprint, dry_run=True).drift == 0


# --- a new revision of the folder is served through a guarded cutover ------------------------------------


def test_a_revised_folder_is_served_by_a_cutover_that_passes_its_guards(orders_blueprint, orders_table, engine,
                                                                        eager_celery, django_user_model, tmp_path):
    from django.contrib.auth.models import Permission

    from backfills import cutover as cutovers
    from backfills.models import Cutover

    approve = Permission.objects.get(codename="approve_cutover")
    requester, approver = (django_user_model.objects.create_user(name, password="x") for name in ("req", "appr"))
    for user in (requester, approver):
        user.user_permissions.add(approve)
    sql_create(orders_table, 2_000)
    old = orders_blueprint.live_index()
    with pipeline(orders_blueprint):
        wait_equal(engine, orders_table, old.name, timeout=60)
        directory = folder(tmp_path, orders_table)
        mapping = json.loads((directory / "mapping.json").read_text())
        mapping["mappings"]["properties"]["status"] = {"type": "keyword", "ignore_above": 64}
        (directory / "mapping.json").write_text(json.dumps(mapping))
        _, revision = declared.propose(orders_blueprint.name, directory, reason="cap status length", by="req")
        assert revision.number == 2

        cutover = cutovers.request(orders_blueprint, requester)
        cutovers.start_build(cutover, requester)  # the backfill runs inline (eager Celery)
        cutover.refresh_from_db()
        assert cutover.state == Cutover.State.AWAITING_APPROVAL and cutover.guards_passed, cutover.guard_results
        cutovers.approve(cutover, approver)
        cutovers.execute(cutover, requester)
        new = cutover.to_index
        assert set(engine.get_alias(orders_blueprint.read_alias)) == {new.name}
        sql_update(orders_table, 7, "paid")  # after the swap: reaches the new index
        wait_equal(engine, orders_table, new.name, timeout=60)
    assert engine.get_mapping(new.name)["properties"]["status"]["ignore_above"] == 64


# --- any language: psql and a Node service call searchsync_emit in their own transactions ----------------


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_writes_through_psql_and_a_node_service_become_searchable(orders_blueprint, orders_table, engine):
    import subprocess

    call_command("outbox", "install", "--source", "default")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "DATABASE_URL": database_url(), "ORDERS_TABLE": orders_table}
    node = subprocess.run(["node", "writer.js", "--orders", "30", "--updates", "10"], cwd=EXAMPLE, env=env,
                          capture_output=True, text=True, timeout=120)
    assert node.returncode == 0, node.stdout + node.stderr
    demo = (EXAMPLE / "demo.sql").read_text().replace("orders", orders_table)
    psql = subprocess.run(["psql", database_url(), "-v", "ON_ERROR_STOP=1", "-q", "-f", "-"], input=demo,
                          capture_output=True, text=True, timeout=60)
    assert psql.returncode == 0, psql.stderr
    assert len(table_state(orders_table)) == 31
    with pipeline(orders_blueprint):
        wait_equal(engine, orders_table, orders_blueprint.live_index().name, timeout=90)
    turing = engine.search(orders_blueprint.read_alias, {"query": {"match": {"customer": "turing"}}})["hits"]["hits"]
    assert [h["_source"]["status"] for h in turing] == ["shipped"]


# --- a row the declared source cannot turn into a document is a dead letter, not a stalled backfill ---------


def test_a_row_the_mapping_refuses_is_dead_lettered_and_the_backfill_goes_on(orders_table, isolated_pipeline, unique,
                                                                           engine, eager_celery, tmp_path):
    from indexing.models import DeadLetter

    directory = folder(tmp_path, orders_table)
    mapping = json.loads((directory / "mapping.json").read_text())
    mapping["mappings"]["properties"]["items"] = {"type": "byte"}  # -128..127: one order below has 500
    (directory / "mapping.json").write_text(json.dumps(mapping))
    blueprint, _ = declared.propose(f"orders-{unique}", directory, reason="test", by="test")
    declared.enable(blueprint)
    try:
        sql_create(orders_table, 300)
        with connection.cursor() as cur:
            cur.execute(f"UPDATE {orders_table} SET items = 500 WHERE id = 150")
        backfill = backfills.start_build(blueprint, parallelism=1)
        backfill.refresh_from_db()
        assert backfill.status == Backfill.Status.COMPLETED and backfill.rows_total == 300
        letter = DeadLetter.objects.get(blueprint=blueprint, entity_id="150")
        assert letter.reason == DeadLetter.Reason.MAPPING_REJECTED and b'"items": 500' in bytes(letter.raw_value)
        engine.refresh(backfill.target_index.name)
        assert engine.count(backfill.target_index.name) == 299
    finally:
        for index in blueprint.indices.all():
            engine.delete_index(index.name)


def test_a_page_read_as_tuples_gives_the_events_a_row_read_as_a_model_gives(unique):
    """A backfill page of a declared relation is turned into events straight from the statement's
    tuples; every column type comes out as the row read through its model would give it, JSON-plain."""
    from indexing.blueprints.relations import RelationSpec, relation_source

    table = f"typed_{unique}"
    with connection.cursor() as cur:
        cur.execute(f"""CREATE TABLE {table} (id bigserial PRIMARY KEY, version bigint NOT NULL, tenant text,
                        price numeric(10, 2), born date, at time, ref uuid, flag boolean, note text,
                        score double precision, updated_at timestamptz NOT NULL DEFAULT now())""")
        cur.execute(f"""INSERT INTO {table} (version, tenant, price, born, at, ref, flag, note, score) VALUES
                        (3, 't1', 12.50, '2026-01-02', '10:11:12', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, 'x', 0.25),
                        (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""")
    try:
        spec = RelationSpec.of({"relation": table, "key": "id", "version": "version", "tenant": "tenant",
                                "updated_at": "updated_at"})
        source = relation_source(table, f"typed_{unique}", spec)
        ids = sorted(source.model.objects.values_list("pk", flat=True))
        from_tuples = source.events_for_ids(ids, "default")
        from_models = [source.to_event(row) for row in source.model.objects.order_by("pk")]
        assert [(e.entity_id, e.tenant_id, e.version, e.timestamp, e.payload) for e in from_tuples] == \
               [(e.entity_id, e.tenant_id, e.version, e.timestamp, e.payload) for e in from_models]
        first = from_tuples[0].payload
        assert (first["price"], first["born"], first["at"], first["ref"], first["flag"], first["score"]) == \
               (12.5, "2026-01-02", "10:11:12", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", True, 0.25)
        assert from_tuples[0].tenant_id == "t1" and from_tuples[1].tenant_id == ""
        json.dumps([e.payload for e in from_tuples])
    finally:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
