"""The outbox as a SQL contract: installed into a source database idempotently and versioned, called
from any language inside the application's transaction, refusing bad arguments, and published by
that source's relay as SearchIndexEvents the seed's schema accepts."""

from __future__ import annotations

import json
from datetime import timedelta

import jsonschema_rs
import pytest
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from indexing.blueprints.contracts import FORMATS
from indexing.core import liveness, source_databases
from indexing.core.topics import topic_for
from indexing.models import OutboxEvent
from indexing.outbox import sql_contract, sql_install
from indexing.outbox.relay import OutboxRelay
from tests.helpers import read_topic, running, wait_until
from tests.source_databases import psql

pytestmark = pytest.mark.django_db(transaction=True)

# The SearchIndexEvent contract exactly as the seed states it (seeds/000): what every publisher owes.
SEED_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "SearchIndexEvent",
    "type": "object",
    "properties": {
        "event_id": {"type": "string", "format": "uuid"},
        "event_type": {"type": "string", "enum": ["PRODUCT_UPSERT", "PRODUCT_DELETE"]},
        "entity_id": {"type": "string"},
        "tenant_id": {"type": "string"},
        "version": {"type": "integer"},
        "timestamp": {"type": "string", "format": "date-time"},
        "payload": {
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "description": {"type": "string"},
                "brand_name": {"type": "string"},
                "price_minor": {"type": "integer"},
                "available_qty": {"type": "integer"},
            },
            "required": ["title", "price_minor", "available_qty"],
        },
    },
    "required": ["event_id", "event_type", "entity_id", "tenant_id", "version", "timestamp"],
}

APP_TABLE = "CREATE TABLE shop_products (id bigint PRIMARY KEY, title text NOT NULL, price_minor bigint NOT NULL)"


@pytest.fixture
def installed_source(source_db):
    source, dbname = source_db
    sql_install.install(source)
    with connections[source.alias].cursor() as cur:
        cur.execute(APP_TABLE)
    return source, dbname


def outbox_rows(alias: str) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.using(alias).order_by("created_at", "event_id"))


def sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__ or exc
    return getattr(cause, "sqlstate", None)


# --- installing --------------------------------------------------------------------------


def test_install_is_idempotent_and_records_its_version(source_db):
    source, _ = source_db
    first = sql_install.install(source)
    assert first.changed and first.before is None
    again = sql_install.install(source)
    assert not again.changed and "nothing to do" in again.describe()
    recorded = sql_install.installed(source.alias)
    assert recorded.version == sql_contract.VERSION
    assert recorded.checksum == sql_install.contract_for(source).checksum


def test_a_new_payload_limit_reinstalls_the_function(source_db):
    source, _ = source_db
    sql_install.install(source)
    changed = sql_install.install(source, max_payload=100)
    assert changed.changed and "re-installed" in changed.describe()
    with pytest.raises(DatabaseError) as refused, transaction.atomic(using=source.alias):
        with connections[source.alias].cursor() as cur:
            cur.execute("SELECT searchsync_emit('product', '1', 't', 1, %s::jsonb)", [json.dumps({"t": "x" * 200})])
    assert sqlstate(refused.value) == sql_contract.TOO_LARGE and "limit of 100" in str(refused.value)


def test_an_older_contract_is_upgraded_and_a_newer_one_refused(source_db):
    source, _ = source_db
    sql_install.install(source)
    with connections[source.alias].cursor() as cur:
        cur.execute("UPDATE searchsync_schema SET version = 0, checksum = 'old' WHERE component = 'outbox'")
    upgraded = sql_install.install(source)
    assert upgraded.changed and "upgraded from v0" in upgraded.describe()
    with connections[source.alias].cursor() as cur:
        cur.execute("UPDATE searchsync_schema SET version = %s WHERE component = 'outbox'", [sql_contract.VERSION + 1])
    with pytest.raises(sql_install.NewerContractInstalled):
        sql_install.install(source)


def test_the_installed_table_is_the_one_djangos_migrations_create(source_db):
    source, _ = source_db
    sql_install.install(source)

    def shape(alias):
        with connections[alias].cursor() as cur:
            cur.execute("SELECT column_name, data_type, character_maximum_length, is_nullable, column_default "
                        "FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                        [sql_contract.TABLE])
            columns = cur.fetchall()
            cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
                        [sql_contract.TABLE])
            indexes = cur.fetchall()
        return columns, indexes

    assert shape(source.alias) == shape("default")


def test_searchsyncs_own_database_gets_the_function_only(settings):
    default = source_databases.get("default")
    assert not any("CREATE TABLE IF NOT EXISTS transactional_outbox" in s
                   for s in sql_install.contract_for(default).statements)
    sql_install.install(default)
    assert not sql_install.install(default).changed
    assert sql_install.installed("default").version == sql_contract.VERSION


def test_the_sql_command_prints_the_installed_ddl(source_db, settings):
    from io import StringIO

    from django.core.management import call_command

    source, dbname = source_db
    settings.SEARCHSYNC_SOURCE_DATABASES = {"default": source_databases.get("default"), source.name: source}
    out = StringIO()
    call_command("outbox", "sql", "--source", source.name, stdout=out)
    # What a DBA applies by hand is what install applies: psql runs it, and install then has nothing to do.
    applied = psql(dbname, out.getvalue())
    assert applied.returncode == 0, applied.stderr
    assert not sql_install.install(source).changed
    out = StringIO()
    call_command("outbox", "status", stdout=out)
    assert f"{source.name} " in out.getvalue() and "v1, current" in out.getvalue()


# --- calling it ----------------------------------------------------------------------------


BAD_CALLS = [
    ("NULL, '1', 't', 1, '{}'", sql_contract.NULL_VALUE, "aggregate_type"),
    ("'', '1', 't', 1, '{}'", sql_contract.INVALID_VALUE, "aggregate_type"),
    ("'pro duct', '1', 't', 1, '{}'", sql_contract.INVALID_VALUE, "aggregate_type"),
    ("'product', NULL, 't', 1, '{}'", sql_contract.NULL_VALUE, "aggregate_id"),
    ("'product', '', 't', 1, '{}'", sql_contract.INVALID_VALUE, "aggregate_id"),
    ("'product', '1', 't', NULL, '{}'", sql_contract.NULL_VALUE, "version"),
    ("'product', '1', 't', -1, '{}'", sql_contract.INVALID_VALUE, "version"),
    ("'product', '1', 't', 1, NULL", sql_contract.NULL_VALUE, "payload"),
    ("'product', '1', 't', 1, '[1, 2]'", sql_contract.INVALID_VALUE, "payload"),
]


@pytest.mark.parametrize("args,state,argument", BAD_CALLS)
def test_bad_arguments_raise_a_named_sql_error_and_write_nothing(installed_source, args, state, argument):
    source, _ = installed_source
    with pytest.raises(DatabaseError) as refused:
        with transaction.atomic(using=source.alias), connections[source.alias].cursor() as cur:
            cur.execute(f"SELECT searchsync_emit({args})")
    assert sqlstate(refused.value) == state
    assert f"searchsync_emit: {argument}" in str(refused.value)
    # Called outside a transaction (autocommit) it writes nothing either.
    with pytest.raises(DatabaseError), connections[source.alias].cursor() as cur:
        cur.execute(f"SELECT searchsync_emit({args})")
    assert outbox_rows(source.alias) == []


def test_an_oversized_payload_is_refused_in_the_writers_transaction(installed_source):
    source, _ = installed_source
    sql_install.install(source, max_payload=1000)
    with pytest.raises(DatabaseError) as refused, connections[source.alias].cursor() as cur:
        cur.execute("SELECT searchsync_emit('product', '1', 't', 1, %s::jsonb)", [json.dumps({"title": "x" * 1000})])
    assert sqlstate(refused.value) == sql_contract.TOO_LARGE and "payload is" in str(refused.value)
    assert outbox_rows(source.alias) == []


def test_a_rolled_back_transaction_leaves_no_outbox_row(installed_source):
    source, dbname = installed_source
    done = psql(dbname, """
        BEGIN;
        INSERT INTO shop_products VALUES (7, 'Chair', 1999);
        SELECT searchsync_emit('product', '7', 'acme', 1,
                               jsonb_build_object('title', 'Chair', 'price_minor', 1999, 'available_qty', 3));
        ROLLBACK;
    """)
    assert done.returncode == 0, done.stderr
    with pytest.raises(RuntimeError):
        with transaction.atomic(using=source.alias), connections[source.alias].cursor() as cur:
            cur.execute("INSERT INTO shop_products VALUES (8, 'Desk', 5000)")
            cur.execute("SELECT searchsync_emit('product', '8', 'acme', 1, '{\"title\": \"Desk\"}')")
            raise RuntimeError("the application fails after the emit")
    assert outbox_rows(source.alias) == []
    with connections[source.alias].cursor() as cur:
        cur.execute("SELECT count(*) FROM shop_products")
        assert cur.fetchone()[0] == 0


def test_an_emit_fills_the_columns_the_relay_reads(installed_source):
    source, _ = installed_source
    with transaction.atomic(using=source.alias), connections[source.alias].cursor() as cur:
        cur.execute("SELECT searchsync_emit('product', '9', NULL, 0, NULL, true)")
        event_id = cur.fetchone()[0]
    row = OutboxEvent.objects.using(source.alias).get()
    assert row.event_id == event_id and row.event_type == "PRODUCT_DELETE"
    assert row.tenant_id == "" and row.payload == {} and row.version == 0 and row.published_at is None
    assert abs(row.created_at - timezone.now()) < timedelta(minutes=1)


# --- published by the source's relay ------------------------------------------------------------


def test_a_row_written_by_psql_is_published_and_valid_against_the_seed_schema(installed_source, products_blueprint):
    source, dbname = installed_source
    done = psql(dbname, """
        BEGIN;
        INSERT INTO shop_products VALUES (42, 'Walnut desk', 34900);
        SELECT searchsync_emit('product', '42', 'acme', 3,
                               jsonb_build_object('title', 'Walnut desk', 'price_minor', 34900, 'available_qty', 5,
                                                  'brand_name', 'Nordwood'));
        COMMIT;
        BEGIN;
        DELETE FROM shop_products WHERE id = 42;
        SELECT searchsync_emit('product', '42', 'acme', 4, NULL, true);
        COMMIT;
    """)
    assert done.returncode == 0, done.stderr
    # No wake-up comes from psql: with a 30 s poll, only the relay's idle probe can find the rows in time.
    relay = OutboxRelay(using=source.alias, source=source.name, poll_s=30.0, idle_probe_ms=50)
    with running(relay.run, "relay"):
        wait_until(lambda: not OutboxEvent.objects.using(source.alias).filter(published_at__isnull=True).exists(),
                   timeout=10, interval=0.05, message="the source's relay publishing the psql rows")
    messages = read_topic(topic_for("product"), 2)
    assert [m["key"] for m in messages] == ["42", "42"]
    validator = jsonschema_rs.validator_for(SEED_SCHEMA, validate_formats=True, formats=FORMATS)
    for message in messages:
        validator.validate(message["value"])
    upsert, delete = (m["value"] for m in messages)
    assert (upsert["event_type"], upsert["version"], upsert["tenant_id"]) == ("PRODUCT_UPSERT", 3, "acme")
    assert upsert["payload"]["brand_name"] == "Nordwood"
    assert (delete["event_type"], delete["version"]) == ("PRODUCT_DELETE", 4) and "payload" not in delete
    # searchsync's own outbox was never touched.
    assert not OutboxEvent.objects.exists()


def test_the_runner_starts_one_relay_per_source_and_health_sees_each(installed_source, products_blueprint, settings):
    from indexing.runtime.runner import PipelineRunner

    source, dbname = installed_source
    settings.SEARCHSYNC_SOURCE_DATABASES = {"default": source_databases.get("default"), source.name: source}
    runner = PipelineRunner(relay=True, consumers=False)
    runner.start()
    try:
        names = {t.name for t in runner.threads}
        assert {"outbox-relay", f"outbox-relay-{source.name}"} <= names
        wait_until(lambda: liveness.live_relays_by_source().get(source.name, 0) >= 1, timeout=20,
                   message="the source's relay heartbeat")
        health = liveness.pipeline_liveness([])
        assert health["relays_by_source"][source.name] >= 1 and health["relays_by_source"]["default"] >= 1
        done = psql(dbname, "SELECT searchsync_emit('product', '5', 'acme', 1, "
                            "'{\"title\": \"Lamp\", \"price_minor\": 1, \"available_qty\": 1}')")
        assert done.returncode == 0, done.stderr
        wait_until(lambda: OutboxEvent.objects.using(source.alias).filter(published_at__isnull=False).exists(),
                   timeout=20, interval=0.05, message="the source's relay publishing")
    finally:
        runner.stop()
    assert read_topic(topic_for("product"), 1)[0]["value"]["entity_id"] == "5"


def test_outbox_cleanup_runs_on_every_source(installed_source, settings):
    from indexing.tasks import clean_outbox

    source, _ = installed_source
    settings.SEARCHSYNC_SOURCE_DATABASES = {"default": source_databases.get("default"), source.name: source}
    old = timezone.now() - timedelta(days=3)
    for alias in ("default", source.alias):
        OutboxEvent.objects.using(alias).create(aggregate_type="product", aggregate_id="1", event_type="PRODUCT_UPSERT",
                                                payload={}, version=1, published_at=old)
    assert clean_outbox() == 2
    assert not OutboxEvent.objects.using(source.alias).exists() and not OutboxEvent.objects.exists()
