"""The outbox as a SQL contract: what any application, in any language, calls inside its own transaction.

A source database gets the outbox table (the same columns and indexes as ``OutboxEvent``, which
the relay reads) and the function ``searchsync_emit``, which fills in what the relay and the
consumer rely on (event id, event type, timestamp) and refuses what they could never publish.
The DDL lives here only: ``manage.py outbox install`` applies it, ``manage.py outbox sql`` prints
it for a DBA who applies it by hand, and both record the same version and checksum in
``searchsync_schema``, so ``install`` knows when there is nothing to do.

Everything is idempotent (``CREATE ... IF NOT EXISTS``, ``CREATE OR REPLACE FUNCTION``), so an
upgrade is the current DDL plus the steps of every version after the installed one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from indexing.conf import searchsync_settings
from indexing.models import OutboxEvent

COMPONENT = "outbox"
VERSION = 1
TABLE = OutboxEvent._meta.db_table

# Steps that only an upgrade from an older version needs (renames, backfilled columns), run in
# order before the current DDL: {version they lead to: [statements]}. Version 1 is the first.
UPGRADE_STEPS: dict[int, list[str]] = {}

# SQLSTATEs of the refusals, documented in README ("Any language").
NULL_VALUE = "22004"  # null_value_not_allowed
INVALID_VALUE = "22023"  # invalid_parameter_value
TOO_LARGE = "54000"  # program_limit_exceeded

SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS searchsync_schema (
    component    text PRIMARY KEY,
    version      integer NOT NULL,
    checksum     text NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now()
)"""

# Exactly what Django's migrations create for OutboxEvent (a test compares the two tables).
OUTBOX_TABLE = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    event_id       uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
    aggregate_type varchar(255) NOT NULL,
    aggregate_id   varchar(255) NOT NULL,
    event_type     varchar(128) NOT NULL,
    payload        jsonb NOT NULL,
    version        bigint NOT NULL,
    created_at     timestamptz DEFAULT statement_timestamp() NOT NULL,
    tenant_id      varchar(255) NOT NULL,
    published_at   timestamptz NULL
)""",
    f"CREATE INDEX IF NOT EXISTS idx_outbox_polling ON {TABLE} (created_at, event_id)",
    f"CREATE INDEX IF NOT EXISTS idx_outbox_unpublished ON {TABLE} (created_at) WHERE published_at IS NULL",
]

# The aggregate type names a Kafka topic (prefix + type): only characters a topic name may hold.
AGGREGATE_TYPE_PATTERN = "^[A-Za-z0-9._-]+$"

EMIT_FUNCTION = """CREATE OR REPLACE FUNCTION searchsync_emit(
    aggregate_type text, aggregate_id text, tenant_id text, version bigint,
    payload jsonb, is_delete boolean DEFAULT false) RETURNS uuid
LANGUAGE plpgsql VOLATILE
-- The table is found where it was installed, whatever the caller's search_path.
SET search_path FROM CURRENT
AS $searchsync_emit$
DECLARE
    new_id uuid := gen_random_uuid();
    body jsonb := payload;
BEGIN
    IF aggregate_type IS NULL THEN
        RAISE EXCEPTION 'searchsync_emit: aggregate_type must not be null' USING ERRCODE = '{null}';
    END IF;
    IF aggregate_type !~ '{pattern}' OR length(aggregate_type) > 200 THEN
        RAISE EXCEPTION 'searchsync_emit: aggregate_type % must be 1-200 characters of A-Z a-z 0-9 . _ -',
            quote_literal(aggregate_type) USING ERRCODE = '{invalid}';
    END IF;
    IF aggregate_id IS NULL THEN
        RAISE EXCEPTION 'searchsync_emit: aggregate_id must not be null' USING ERRCODE = '{null}';
    END IF;
    IF aggregate_id = '' OR length(aggregate_id) > 255 THEN
        RAISE EXCEPTION 'searchsync_emit: aggregate_id must be 1-255 characters' USING ERRCODE = '{invalid}';
    END IF;
    IF length(coalesce(tenant_id, '')) > 255 THEN
        RAISE EXCEPTION 'searchsync_emit: tenant_id must be at most 255 characters' USING ERRCODE = '{invalid}';
    END IF;
    IF version IS NULL THEN
        RAISE EXCEPTION 'searchsync_emit: version must not be null' USING ERRCODE = '{null}';
    END IF;
    IF version < 0 THEN
        RAISE EXCEPTION 'searchsync_emit: version must be >= 0, got %', version USING ERRCODE = '{invalid}';
    END IF;
    IF is_delete IS NULL THEN
        RAISE EXCEPTION 'searchsync_emit: is_delete must not be null' USING ERRCODE = '{null}';
    END IF;
    IF body IS NULL THEN
        IF NOT is_delete THEN
            RAISE EXCEPTION 'searchsync_emit: payload must not be null for an upsert' USING ERRCODE = '{null}';
        END IF;
        body := '{{}}'::jsonb;  -- a delete carries no payload
    END IF;
    IF jsonb_typeof(body) <> 'object' THEN
        RAISE EXCEPTION 'searchsync_emit: payload must be a JSON object, got %', jsonb_typeof(body)
            USING ERRCODE = '{invalid}';
    END IF;
    -- Checked here, in the writer's transaction, because the relay could only dead-letter it later.
    IF octet_length(body::text) > {max_payload} THEN
        RAISE EXCEPTION 'searchsync_emit: payload is % bytes, more than the limit of {max_payload}',
            octet_length(body::text) USING ERRCODE = '{too_large}';
    END IF;
    INSERT INTO {table} (event_id, aggregate_type, aggregate_id, event_type, payload, version, tenant_id,
                         created_at)
    VALUES (new_id, searchsync_emit.aggregate_type, searchsync_emit.aggregate_id,
            -- The same rule as indexing.blueprints.contracts.event_type_for.
            upper(searchsync_emit.aggregate_type) || CASE WHEN is_delete THEN '_DELETE' ELSE '_UPSERT' END,
            body, searchsync_emit.version, coalesce(searchsync_emit.tenant_id, ''), statement_timestamp());
    RETURN new_id;
END
$searchsync_emit$"""

EMIT_COMMENT = ("COMMENT ON FUNCTION searchsync_emit(text, text, text, bigint, jsonb, boolean) IS "
                "'searchsync outbox contract v{version}: record one change event in {table}, inside the "
                "caller''s transaction; payload at most {max_payload} bytes'")


def max_payload_bytes() -> int:
    configured = searchsync_settings.EMIT_MAX_PAYLOAD_BYTES
    return configured if configured is not None else searchsync_settings.MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class Contract:
    """The DDL of one source database's contract; ``checksum`` changes whenever any of it does."""

    statements: tuple[str, ...]
    version: int = VERSION

    @property
    def checksum(self) -> str:
        return hashlib.sha256("\n;\n".join(self.statements).encode()).hexdigest()[:16]

    def record(self) -> str:
        return (f"INSERT INTO searchsync_schema (component, version, checksum, installed_at) "
                f"VALUES ('{COMPONENT}', {self.version}, '{self.checksum}', now()) "
                "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, "
                "checksum = EXCLUDED.checksum, installed_at = EXCLUDED.installed_at")

    def script(self) -> str:
        """The whole contract as one transaction, for psql (``manage.py outbox sql``)."""
        body = ";\n\n".join([*self.statements, self.record()])
        return f"BEGIN;\n\n{body};\n\nCOMMIT;\n"


def contract(with_table: bool = True, max_payload: int | None = None) -> Contract:
    """The contract's DDL. searchsync's own database has the table from Django's migrations, so
    there the contract is the function only (``with_table=False``)."""
    limit = max_payload if max_payload is not None else max_payload_bytes()
    if limit <= 0:
        raise ValueError(f"the payload limit must be positive, not {limit}")
    function = EMIT_FUNCTION.format(null=NULL_VALUE, invalid=INVALID_VALUE, too_large=TOO_LARGE,
                                    pattern=AGGREGATE_TYPE_PATTERN, max_payload=int(limit), table=TABLE)
    comment = EMIT_COMMENT.format(version=VERSION, table=TABLE, max_payload=int(limit))
    table = OUTBOX_TABLE if with_table else []
    return Contract((SCHEMA_TABLE, *table, function, comment))
