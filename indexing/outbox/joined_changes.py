"""Fan-out for blueprints declared over a view: a change to a joined table, in any language.

A declared blueprint over a view names the tables the view joins (``source.depends_on``). A row
of such a table changed by the application (in SQL, from any language, with no searchsync call)
changes the documents of every view row showing it. A trigger on the joined table records the
changed row's key in ``searchsync_joined_changes``, in the writing transaction, so the change
never commits without its record. A watcher per source database drains those records and starts,
for every blueprint depending on the table, the same fan-out a model-backed dependency starts
(``indexing.blueprints.dependencies.dependency_changed``): a throttled, resumable backfill that
re-emits the dependent rows through the outbox, with their current versions.

Those versions must be higher than what the index holds: the view's version column has to grow
when a joined row changes (for example the greater of the two rows' stamps, drawn from one
sequence), as for any document built from several rows.

Records are drained at least once: the fan-outs are created and committed before the records are
deleted, so a crash in between starts a fan-out twice, which versioning absorbs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from django.db import close_old_connections, connections, transaction

from indexing.blueprints.dependencies import Dependency, dependency_changed, selection_for
from indexing.blueprints.relations import RelationSpec, TableDependency, qualified_name
from indexing.conf import searchsync_settings
from indexing.core import source_databases
from indexing.core.backoff import backoff_delay
from indexing.models import IndexBlueprint

log = logging.getLogger(__name__)

TABLE = "searchsync_joined_changes"
FUNCTION = "searchsync_joined_changed"
BATCH = 1000

INSTALL_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id         bigserial   PRIMARY KEY,
    relation   text        NOT NULL,
    row_key    text        NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    key_column text := TG_ARGV[0];
    old_key text := to_jsonb(OLD) ->> key_column;
    new_key text := to_jsonb(NEW) ->> key_column;
BEGIN
    IF OLD IS NOT DISTINCT FROM NEW THEN
        RETURN NULL;  -- a no-op UPDATE changes no document
    END IF;
    INSERT INTO {TABLE} (relation, row_key) VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, old_key);
    IF new_key IS DISTINCT FROM old_key THEN
        INSERT INTO {TABLE} (relation, row_key) VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, new_key);
    END IF;
    RETURN NULL;
END $$;
"""


def trigger_sql(table: str, key: str, quote) -> str:
    """The trigger recording a joined table's changed rows (idempotent: replaced when it exists)."""
    schema, _, name = table.partition(".")
    target = f"{quote(schema)}.{quote(name)}"
    return (f"DROP TRIGGER IF EXISTS {FUNCTION} ON {target};"
            f"CREATE TRIGGER {FUNCTION} AFTER UPDATE ON {target} FOR EACH ROW "
            f"EXECUTE FUNCTION {FUNCTION}('{key.replace(chr(39), chr(39) * 2)}');")


def install(spec: RelationSpec) -> list[str]:
    """Put the record table, its function and one trigger per joined table into the source
    database; returns the joined tables (schema-qualified). Needs the tables' owner, as any trigger."""
    alias = source_databases.get(spec.database).alias
    quote = connections[alias].ops.quote_name
    tables = []
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cur:
            cur.execute(INSTALL_TABLE)
            for dependency in spec.depends_on:
                table = qualified_name(RelationSpec(spec.database, dependency.table, dependency.key, dependency.key))
                cur.execute(trigger_sql(table, dependency.key, quote))
                tables.append(table)
    return tables


def dependents(source: str) -> dict[str, list[tuple[IndexBlueprint, TableDependency]]]:
    """Joined table (schema-qualified) → the enabled blueprints of ``source`` depending on it."""
    found = defaultdict(list)
    for blueprint in IndexBlueprint.objects.filter(enabled=True).exclude(relation={}):
        spec = RelationSpec.of(blueprint.relation)
        if spec.database != source:
            continue
        for dependency in spec.depends_on:
            table = qualified_name(RelationSpec(spec.database, dependency.table, dependency.key, dependency.key))
            found[table].append((blueprint, dependency))
    return dict(found)


def drain(source: str, depending: dict | None = None) -> int:
    """Turn the recorded changes of ``source`` into fan-outs; returns how many records were drained."""
    depending = dependents(source) if depending is None else depending
    alias = source_databases.get(source).alias
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cur:
            cur.execute(f"SELECT to_regclass('{TABLE}') IS NOT NULL")
            if not cur.fetchone()[0]:
                return 0
            cur.execute(f"SELECT id, relation, row_key FROM {TABLE} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                        [BATCH])
            records = cur.fetchall()
            if not records:
                return 0
            keys = defaultdict(set)
            for _, relation, row_key in records:
                if row_key is not None:
                    keys[relation].add(row_key)
            # Committed in searchsync's database before the records go: at least once.
            with transaction.atomic():
                for relation, changed in keys.items():
                    started = set()  # one fan-out per topic: blueprints sharing a type read the same events
                    for blueprint, dependency in depending.get(relation, []):
                        if blueprint.aggregate_type in started or blueprint.live_index() is None:
                            continue
                        started.add(blueprint.aggregate_type)
                        dependency_changed.send(sender=Dependency, blueprint=blueprint,
                                                selection=selection_for(dependency, sorted(changed)))
            cur.execute(f"DELETE FROM {TABLE} WHERE id = ANY(%s)", [[r[0] for r in records]])
    log.info("%s: %d joined-row changes turned into fan-outs", source, len(records))
    return len(records)


class JoinedChangesWatcher:
    """Drains one source database's joined-row changes every ``JOINED_CHANGES_POLL_S``; idle (no
    query on the source) while no enabled blueprint of that database declares a dependency."""

    def __init__(self, source: str):
        self.source = source

    def run(self, stop: threading.Event) -> None:
        failures, depending, read_at = 0, {}, float("-inf")
        while not stop.is_set():
            try:
                close_old_connections()
                if time.monotonic() - read_at >= searchsync_settings.BLUEPRINT_RELOAD_S:
                    depending, read_at = dependents(self.source), time.monotonic()
                drained = drain(self.source, depending) if depending else 0
                failures = 0
            except Exception:
                failures += 1
                log.exception("draining the joined-row changes of %s failed", self.source)
                stop.wait(backoff_delay(failures, 0.5, 30.0))
                continue
            if drained < BATCH:
                stop.wait(searchsync_settings.JOINED_CHANGES_POLL_S)
