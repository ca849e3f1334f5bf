"""Blueprints declared in files over a table or view: no Python on the application's side.

A folder holds ``blueprint.json``::

    {"aggregate_type": "order", "delete_mode": "tombstone",
     "source": {"database": "default", "relation": "orders_search", "key": "id", "version": "version",
                "tenant": "tenant_id", "updated_at": "updated_at",
                "rename": {"customer_email": "email"}, "omit": ["internal_note"]},
     "golden_queries": [...], "sidecar": {...}}

``mapping.json`` (index settings and a strict mapping) and, optionally, ``event.schema.json``
(generated from the mapping when absent). The document is the relation's row: its columns become
fields, renamed or omitted as declared; a view supplies joins.

Live changes come one of two ways (``"feed"`` in blueprint.json):

- ``outbox`` (the default): the application calls ``searchsync_emit(..., to_jsonb(row))`` in the
  writing transaction; the events carry the same row as their payload;
- ``table_changes``: Debezium reads the table's changes from the source database's WAL; no change
  to the application at all. Only a table has changes in the WAL (a view's joins cannot be
  followed this way), its ``version`` column is the version of its changes, and its replica
  identity must be FULL so a delete carries the version it deletes. Change rows are turned into the
  very values a row read gives (``change_row``), so a streamed document equals a backfilled one.
 The relation is read through Django's multi-database support: an unmanaged model built from
the relation's columns, on the source database's aliases.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal

from django.db import connections, models

from indexing.blueprints.contracts import Event, event_type_for
from indexing.blueprints.change_rows import change_row_reader
from indexing.blueprints.sources import Source
from indexing.core import source_databases
from indexing.core.sql_arrays import int_array, is_integer_field

BUILDER = "relation"  # the document_builder of every declared blueprint: the row is the document
COMMON_FIELDS = ("id", "tenant_id", "version", "updated_at", "deleted")
INTEGER_TYPES = {"smallint", "integer", "bigint"}
OUTBOX, TABLE_CHANGES = "outbox", "table_changes"
FEEDS = (OUTBOX, TABLE_CHANGES)


class DeclarationError(ValueError):
    """A blueprint folder that cannot work, with the exact problem."""


@dataclass(frozen=True)
class RelationSpec:
    database: str
    relation: str
    key: str
    version: str
    tenant: str | None = None
    updated_at: str | None = None
    rename: dict = field(default_factory=dict)
    omit: tuple = ()
    feed: str = OUTBOX
    depends_on: tuple = ()  # TableDependency: joined tables whose changes fan out

    @classmethod
    def of(cls, raw: dict) -> "RelationSpec":
        if not isinstance(raw, dict):
            raise DeclarationError("blueprint.json: 'source' must be an object")
        missing = [k for k in ("relation", "key", "version") if not raw.get(k)]
        if missing:
            raise DeclarationError(f"blueprint.json: source lacks {', '.join(missing)}")
        unknown = set(raw) - {"database", "relation", "key", "version", "tenant", "updated_at", "rename", "omit", "feed",
                              "depends_on"}
        if unknown:
            raise DeclarationError(f"blueprint.json: unknown source keys {sorted(unknown)}")
        rename, omit = raw.get("rename") or {}, raw.get("omit") or []
        if not isinstance(rename, dict) or not all(isinstance(v, str) and v for v in rename.values()):
            raise DeclarationError("blueprint.json: source.rename must map column names to field names")
        if not isinstance(omit, list):
            raise DeclarationError("blueprint.json: source.omit must be a list of column names")
        feed = raw.get("feed") or OUTBOX
        if feed not in FEEDS:
            raise DeclarationError(f"blueprint.json: feed is {' or '.join(FEEDS)}, not {feed!r}")
        return cls(database=raw.get("database") or source_databases.DEFAULT, relation=raw["relation"],
                   key=raw["key"], version=raw["version"], tenant=raw.get("tenant"),
                   updated_at=raw.get("updated_at"), rename=dict(rename), omit=tuple(omit), feed=feed,
                   depends_on=TableDependency.all_of(raw.get("depends_on")))

    def as_dict(self) -> dict:
        found = {"database": self.database, "relation": self.relation, "key": self.key, "version": self.version,
                 "tenant": self.tenant, "updated_at": self.updated_at, "rename": self.rename, "omit": list(self.omit)}
        if self.feed != OUTBOX:  # absent in every revision recorded before feeds existed: the same hash
            found["feed"] = self.feed
        if self.depends_on:
            found["depends_on"] = [d.as_dict() for d in self.depends_on]
        return found

    @property
    def row_fields(self) -> set[str]:
        """Columns that are the document's common fields rather than its payload."""
        return {c for c in (self.key, self.version, self.tenant, self.updated_at) if c}


@dataclass(frozen=True)
class TableDependency:
    """A table a declared view joins: a change of one of its rows changes the documents of the
    relation's rows whose ``via`` column holds that row's ``key``. It plays the part of a model
    ``Dependency`` in the fan-out machinery (``indexing.blueprints.dependencies``): the same
    selection, the same throttled, resumable fan-out backfill re-emitting those rows."""
    table: str
    key: str
    via: str
    fields = None  # every column of the joined row counts
    subtree = None

    @classmethod
    def all_of(cls, raw) -> tuple["TableDependency", ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(isinstance(d, dict) for d in raw):
            raise DeclarationError('blueprint.json: source.depends_on is a list of {"table", "key", "via"}')
        found = []
        for d in raw:
            if set(d) != {"table", "key", "via"} or not all(isinstance(v, str) and v for v in d.values()):
                raise DeclarationError('blueprint.json: each of source.depends_on is {"table": the joined table, '
                                       '"key": its key column, "via": the relation\'s column holding that key}')
            found.append(cls(d["table"], d["key"], d["via"]))
        return tuple(found)

    def as_dict(self) -> dict:
        return {"table": self.table, "key": self.key, "via": self.via}

    @property
    def label(self) -> str:
        return f"table:{self.table}"

    def affected_ids(self, pks, using: str = "default") -> list:
        return list(pks) if isinstance(pks, (list, tuple, set)) else [pks]

    def touches(self, update_fields) -> bool:
        return True


# -- the relation in its database ---------------------------------------------------------------


def columns(spec: RelationSpec) -> dict[str, str]:
    """Column → PostgreSQL type of the relation (table, view or materialized view), in order."""
    alias = source_databases.get(spec.database).alias
    schema, _, name = spec.relation.rpartition(".")
    with connections[alias].cursor() as cur:
        cur.execute(
            """SELECT a.attname, format_type(a.atttypid, a.atttypmod)
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relname = %s AND n.nspname = COALESCE(NULLIF(%s, ''), current_schema())
                  AND c.relkind IN ('r', 'v', 'm', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY a.attnum""", [name, schema])
        return dict(cur.fetchall())


def check(spec: RelationSpec, mappings: dict) -> dict[str, str]:
    """The relation's columns, or a DeclarationError naming what does not fit."""
    try:
        source_databases.get(spec.database)
    except LookupError as exc:
        raise DeclarationError(str(exc)) from None
    found = columns(spec)
    if not found:
        raise DeclarationError(f"relation {spec.relation!r} does not exist in source database {spec.database!r}")
    for role in ("key", "version", "tenant", "updated_at"):
        column = getattr(spec, role)
        if column and column not in found:
            raise DeclarationError(f"source.{role}: {spec.relation} has no column {column!r} "
                                   f"(columns: {', '.join(found)})")
    if found[spec.version].split("(")[0] not in INTEGER_TYPES:
        raise DeclarationError(f"source.version: column {spec.version!r} is {found[spec.version]}, not an integer; "
                               "a document's version must be a bigint that grows with every write")
    unknown = [c for c in (*spec.rename, *spec.omit) if c not in found]
    if unknown:
        raise DeclarationError(f"source.rename/omit name columns {spec.relation} does not have: {unknown}")
    if spec.feed == TABLE_CHANGES:
        _check_table_changes(spec)
    for dependency in spec.depends_on:
        _check_dependency(spec, dependency, found)
    properties = mappings.get("properties", {})
    unmapped = [c for c in document_columns(spec, found) if spec.rename.get(c, c) not in properties]
    if unmapped and mappings.get("dynamic") == "strict":
        raise DeclarationError(f"mapping.json: columns {unmapped} of {spec.relation} have no field in the strict "
                               "mapping: map them, rename them to a mapped field, or omit them")
    return found


def _relation_facts(spec: RelationSpec) -> tuple[str, str, str]:
    """(schema-qualified name, relkind, replica identity) of the relation."""
    alias = source_databases.get(spec.database).alias
    schema, _, name = spec.relation.rpartition(".")
    with connections[alias].cursor() as cur:
        cur.execute(
            """SELECT n.nspname || '.' || c.relname, c.relkind, c.relreplident
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relname = %s AND n.nspname = COALESCE(NULLIF(%s, ''), current_schema())""", [name, schema])
        row = cur.fetchone()
    if row is None:
        raise DeclarationError(f"relation {spec.relation!r} does not exist in source database {spec.database!r}")
    return row


def qualified_name(spec: RelationSpec) -> str:
    """``schema.table``, as Debezium names the table (its include list, its topic)."""
    return _relation_facts(spec)[0]


def _check_table_changes(spec: RelationSpec) -> None:
    name, kind, identity = _relation_facts(spec)
    if kind not in ("r", "p"):
        raise DeclarationError(f"feed table_changes: {spec.relation} is a "
                               f"{ {'v': 'view', 'm': 'materialized view', 'f': 'foreign table'}.get(kind, 'relation')}; "
                               "only a table's changes are in the WAL. Declare the table itself, or feed the view's "
                               "rows through searchsync_emit (feed outbox)")
    if identity != "f":
        raise DeclarationError(f"feed table_changes: a delete must carry the version it deletes; run "
                               f"ALTER TABLE {name} REPLICA IDENTITY FULL")


def _check_dependency(spec: RelationSpec, dependency: TableDependency, found: dict[str, str]) -> None:
    if spec.feed == TABLE_CHANGES:
        raise DeclarationError("source.depends_on: a table's own changes show only its own row; joined tables "
                               "need a view fed through searchsync_emit (feed outbox)")
    if dependency.via not in found:
        raise DeclarationError(f"source.depends_on: {spec.relation} has no column {dependency.via!r} "
                               f"holding the key of {dependency.table}")
    joined = columns(RelationSpec(spec.database, dependency.table, dependency.key, dependency.key))
    if not joined:
        raise DeclarationError(f"source.depends_on: table {dependency.table!r} does not exist in source database "
                               f"{spec.database!r}")
    if dependency.key not in joined:
        raise DeclarationError(f"source.depends_on: {dependency.table} has no column {dependency.key!r}")


def document_columns(spec: RelationSpec, found: dict[str, str]) -> list[str]:
    return [c for c in found if c not in spec.row_fields and c not in spec.omit]


def _table(relation: str) -> str:
    """The relation as Django's db_table: ``schema"."name`` when qualified, so each part is quoted."""
    schema, _, name = relation.rpartition(".")
    return f'{schema}"."{name}' if schema else name


_KEY_FIELDS = {"smallint": models.IntegerField, "integer": models.IntegerField, "bigint": models.BigIntegerField,
               "uuid": models.UUIDField}
_MODELS: dict[str, type[models.Model]] = {}


def relation_model(spec: RelationSpec) -> type[models.Model]:
    """An unmanaged model over the relation: the key typed (so lookups by id bind correctly), every
    other column read as the database gives it. One class per relation shape, made once per process."""
    found = columns(spec)
    if spec.key not in found:
        raise DeclarationError(f"relation {spec.relation!r} in {spec.database!r} has no key column {spec.key!r}")
    shape = json.dumps([spec.database, spec.relation, spec.key, list(found.items())])
    name = "Relation" + hashlib.sha1(shape.encode()).hexdigest()[:12]
    if name not in _MODELS:
        key_field = _KEY_FIELDS.get(found[spec.key].split("(")[0], models.TextField)
        attrs = {"__module__": __name__,
                 "Meta": type("Meta", (), {"managed": False, "db_table": _table(spec.relation), "app_label": "indexing"})}
        for column in found:
            attrs[column] = key_field(primary_key=True) if column == spec.key else models.Field(db_column=column)
        _MODELS[name] = type(name, (models.Model,), attrs)
    return _MODELS[name]


# -- rows, events and documents ----------------------------------------------------------------------


_JSON_AS_IS = frozenset({str, int, float, bool, type(None)})


def _plain(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def relation_source(name: str, aggregate_type: str, spec: RelationSpec) -> Source:
    """The Source of a declared blueprint: rows of its relation, read on its source database."""
    model = relation_model(spec)
    upsert = event_type_for(aggregate_type, False)
    database = source_databases.get(spec.database)

    columns_of = [f.attname for f in model._meta.concrete_fields]
    tenant, updated_at, key, version = spec.tenant, spec.updated_at, spec.key, spec.version

    def event_of(values: dict) -> Event:
        stamp = values.get(updated_at) if updated_at else None
        return Event(event_id="", event_type=upsert, entity_id=str(values[key]),
                     tenant_id=str(values.get(tenant) or "") if tenant else "",
                     version=int(values[version]),
                     timestamp=stamp if isinstance(stamp, datetime) else datetime.now(timezone.utc),
                     # Most columns are JSON as they are: a type test is cheaper than a call per value.
                     payload={c: v if type(v) in _JSON_AS_IS else _plain(v) for c, v in values.items()})

    def to_event(row) -> Event:
        return event_of({c: getattr(row, c) for c in columns_of})

    names = [f.column for f in model._meta.concrete_fields]
    key_field = model._meta.pk
    quote = connections[database.alias].ops.quote_name
    integer_key = is_integer_field(key_field)
    select = (f"SELECT {', '.join(quote(c) for c in names)} FROM {quote(model._meta.db_table)} "
              f"WHERE {quote(spec.key)} = ANY(%s{'::bigint[]' if integer_key else ''}) ORDER BY {quote(spec.key)}")

    def ids_to_events(ids, using: str) -> list[Event]:
        # Backfill pages: events straight from one statement's tuples, no model instance per row.
        keys = [key_field.to_python(i) for i in ids]
        if not keys:
            return []
        with connections[using].cursor() as cur:
            cur.execute(select, [int_array(keys) if integer_key else keys])
            rows = cur.fetchall()
        return [event_of(dict(zip(columns_of, row))) for row in rows]

    changes = spec.feed == TABLE_CHANGES
    return Source(f"relation:{name}", model, to_event, tenant_field=spec.tenant or "", updated_field=spec.updated_at or "",
                  version_field=spec.version, database=database.alias, replica=database.replica_alias,
                  ids_to_events=ids_to_events, stamp_field=spec.version if changes else None,
                  depends_on=spec.depends_on,
                  change_row=change_row_reader(columns(spec)) if changes else None)


def document_builder(spec: RelationSpec):
    """The document of a row payload: the row's columns, renamed and cut as declared, plus the
    fields every document carries (from the event, which the version rules work on)."""
    skip = spec.row_fields | set(spec.omit)

    def build(event: Event) -> dict:
        document = {spec.rename.get(c, c): v for c, v in (event.payload or {}).items() if c not in skip}
        document.update(id=event.entity_id, tenant_id=event.tenant_id, version=event.version,
                        updated_at=event.timestamp.isoformat(), deleted=False)
        return document

    return build


_DECLARED: dict[tuple, tuple[Source, object]] = {}


def _declared(blueprint) -> tuple[Source, object]:
    """(source, builder) of a declared blueprint, made once per definition and process."""
    key = (blueprint.name, blueprint.aggregate_type, json.dumps(blueprint.relation, sort_keys=True))
    if key not in _DECLARED:
        spec = RelationSpec.of(blueprint.relation)
        _DECLARED[key] = (relation_source(blueprint.name, blueprint.aggregate_type, spec), document_builder(spec))
    return _DECLARED[key]


def declared_source(blueprint) -> Source:
    return _declared(blueprint)[0]


def declared_builder(blueprint):
    return _declared(blueprint)[1]
