"""Fan-out of a blueprint declared over a view: a joined table's row changed in plain SQL, with no
searchsync call, re-indexes every document showing it through the fan-out machinery (a trigger
records the change in the writing transaction; the watcher turns it into a fan-out backfill)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.db import connection

from backfills.models import Backfill
from indexing.blueprints.relations import DeclarationError
from indexing.control import declared
from indexing.outbox import joined_changes
from indexing.outbox.joined_changes import JoinedChangesWatcher
from tests.helpers import pipeline, running, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, databases=["default", "replica"])]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "orders"

# Every write of an order or a customer takes a stamp from one sequence, in the writing transaction
# after the row lock: the view's version, the greater of the two stamps, grows with either row.
SCHEMA = """
CREATE SEQUENCE {p}_stamps;
CREATE TABLE {p}_customers (id bigint PRIMARY KEY, name text NOT NULL,
                            stamp bigint NOT NULL DEFAULT nextval('{p}_stamps'));
CREATE TABLE {p}_orders (id bigserial PRIMARY KEY, tenant_id text NOT NULL,
                         customer_id bigint NOT NULL REFERENCES {p}_customers (id),
                         status text NOT NULL DEFAULT 'placed', total_minor bigint NOT NULL, items integer NOT NULL,
                         stamp bigint NOT NULL DEFAULT nextval('{p}_stamps'),
                         updated_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION {p}_restamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.stamp := nextval('{p}_stamps'); RETURN NEW; END $$;
CREATE TRIGGER restamp BEFORE UPDATE ON {p}_customers FOR EACH ROW EXECUTE FUNCTION {p}_restamp();
CREATE TRIGGER restamp BEFORE UPDATE ON {p}_orders FOR EACH ROW EXECUTE FUNCTION {p}_restamp();
CREATE VIEW {p}_search AS
    SELECT o.id, o.tenant_id, o.customer_id, c.name AS customer, o.status, o.total_minor, o.items,
           greatest(o.stamp, c.stamp) AS version, o.updated_at
      FROM {p}_orders o JOIN {p}_customers c ON c.id = o.customer_id;
"""


@pytest.fixture
def shop(transactional_db, unique):
    prefix = f"fan_{unique}"
    with connection.cursor() as cur:
        cur.execute(SCHEMA.format(p=prefix))
    yield prefix
    with connection.cursor() as cur:
        cur.execute(f"DROP VIEW IF EXISTS {prefix}_search; DROP TABLE IF EXISTS {prefix}_orders, {prefix}_customers;"
                    f"DROP SEQUENCE IF EXISTS {prefix}_stamps; DROP FUNCTION IF EXISTS {prefix}_restamp()")


def folder(tmp_path: Path, prefix: str, **dependency) -> Path:
    directory = tmp_path / "blueprint"
    shutil.copytree(EXAMPLE / "blueprint", directory, dirs_exist_ok=True)
    declaration = json.loads((directory / "blueprint.json").read_text())
    declaration["source"].update({
        "relation": f"{prefix}_search", "omit": ["customer_id"],
        "depends_on": [{"table": f"{prefix}_customers", "key": "id", "via": "customer_id", **dependency}]})
    (directory / "blueprint.json").write_text(json.dumps(declaration))
    return directory


def emit(prefix: str, where: str = "true") -> None:
    """Events of view rows into the outbox, as the application's own SQL would write them."""
    with connection.cursor() as cur:
        cur.execute(f"""INSERT INTO transactional_outbox (aggregate_type, aggregate_id, event_type, payload, version,
                                                          tenant_id)
                        SELECT 'order', id::text, 'ORDER_UPSERT', to_jsonb(s), version, tenant_id
                          FROM {prefix}_search s WHERE {where}""")


def view_state(prefix: str) -> dict[str, tuple[int, str, str]]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT id::text, version, customer, status FROM {prefix}_search")
        return {pk: (version, customer, status) for pk, version, customer, status in cur.fetchall()}


def index_state(engine, index: str) -> dict[str, tuple[int, str, str]]:
    engine.refresh(index)
    return {h["_id"]: (h["_version"], h["_source"]["customer"], h["_source"]["status"])
            for h in engine.scan(index, query={"term": {"deleted": False}}) if h["_source"].get("status")}


def test_propose_refuses_a_dependency_that_cannot_work(shop, tmp_path):
    with pytest.raises(DeclarationError, match=f"{shop}_search has no column 'buyer_id'"):
        declared.propose("orders-fan", folder(tmp_path, shop, via="buyer_id"), reason="test")
    with pytest.raises(DeclarationError, match="table 'no_such_customers' does not exist"):
        declared.propose("orders-fan", folder(tmp_path, shop, table="no_such_customers"), reason="test")


def test_a_joined_row_changed_in_sql_re_indexes_every_document_showing_it(shop, tmp_path, unique, isolated_pipeline,
                                                                         engine, eager_celery, admin_client):
    blueprint, _ = declared.propose(f"orders-fan-{unique}", folder(tmp_path, shop), reason="test")
    declared.enable(blueprint)
    blueprint.refresh_from_db()
    assert f"joins {shop}_customers via customer_id" in admin_client.get("/blueprints/").content.decode()
    index = blueprint.live_index().name
    with connection.cursor() as cur:
        cur.execute(f"INSERT INTO {shop}_customers (id, name) VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Linus')")
        cur.execute(f"INSERT INTO {shop}_orders (tenant_id, customer_id, total_minor, items) "
                    "SELECT 'acme', 1 + g % 3, g * 100, 1 FROM generate_series(1, 60) g")
    emit(shop)
    try:
        with pipeline(blueprint), running(JoinedChangesWatcher("default").run, "joined-changes"):
            wait_until(lambda: view_state(shop) == index_state(engine, index), timeout=60, interval=0.5,
                       message="index equal to the view")
            # The application renames a customer in plain SQL and emits nothing.
            with connection.cursor() as cur:
                cur.execute(f"UPDATE {shop}_customers SET name = 'Ada Lovelace' WHERE id = 1")
            wait_until(lambda: view_state(shop) == index_state(engine, index), timeout=60, interval=0.5,
                       message="the renamed customer's orders re-indexed")
            assert sum(1 for _, customer, _ in index_state(engine, index).values() if customer == "Ada Lovelace") == 20
            with connection.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {joined_changes.TABLE}")
                assert cur.fetchone()[0] == 0  # drained once its fan-out was committed
        fanout = Backfill.objects.get(blueprint=blueprint, purpose=Backfill.Purpose.FANOUT)
        assert fanout.selection == {"kind": "dependency", "on": f"table:{shop}_customers", "ids": ["1"]}
        assert fanout.status == Backfill.Status.COMPLETED and fanout.rows_total == 20
    finally:
        for physical in blueprint.indices.all():
            engine.delete_index(physical.name)
