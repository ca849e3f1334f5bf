"""Debezium connectors on Kafka Connect, managed through its REST API.

Two ways Debezium feeds the pipeline:
- the outbox event router reads ``transactional_outbox`` inserts from the WAL and
  publishes them to the same topics, with the same key and the same
  SearchIndexEvent value the relay produces — nothing downstream changes;
- direct table CDC publishes a table's change events (before/after/op/source),
  which a blueprint with ``event_format=debezium_table`` consumes (see debezium.py).
Each connector has its own named replication slot on a publication limited to the tables it
needs, in the source database whose WAL it reads: searchsync's own (``default``) or any declared in
SEARCHSYNC_SOURCES. Slots are watched per source database (retained WAL, attached or not).
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from django.db import connections

from indexing.conf import searchsync_settings
from indexing.core import source_databases
from indexing.models import EventFormat, IndexBlueprint

OUTBOX_PUBLICATION = "searchsync_outbox"
TABLES_PUBLICATION = "searchsync_tables"


class ConnectError(RuntimeError):
    pass


def _database(source: str = source_databases.DEFAULT) -> dict:
    """Where the connector reads the WAL: the source database's primary (a replica has no slots)."""
    db = connections[source_databases.get(source).alias].settings_dict
    return {
        "database.hostname": db.get("HOST") or "127.0.0.1",
        "database.port": str(db.get("PORT") or 5432),
        "database.user": db["USER"],
        "database.password": db["PASSWORD"],
        "database.dbname": db["NAME"],
        "plugin.name": "pgoutput",
        "publication.autocreate.mode": "disabled",
    }


def outbox_connector_config(slot: str, topic_prefix: str | None = None,
                            source: str = source_databases.DEFAULT) -> dict:
    prefix = topic_prefix if topic_prefix is not None else searchsync_settings.TOPIC_PREFIX
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        **_database(source),
        "slot.name": slot,
        "publication.name": OUTBOX_PUBLICATION,
        "table.include.list": "public.transactional_outbox",
        "topic.prefix": f"{slot}-raw",  # unused: the router renames every topic
        # Rows already in the outbox were published by the relay, or will be by the cleanup
        # window; the router only streams what is written from now on.
        "snapshot.mode": "no_data",
        "tombstones.on.delete": "false",
        "transforms": "outbox",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        "transforms.outbox.table.field.event.id": "event_id",
        "transforms.outbox.table.field.event.key": "aggregate_id",
        "transforms.outbox.table.field.event.payload": "payload",
        "transforms.outbox.route.by.field": "aggregate_type",
        "transforms.outbox.route.topic.replacement": f"{prefix}${{routedByValue}}",
        "transforms.outbox.table.expand.json.payload": "true",
        # Rebuild the SearchIndexEvent contract around the payload.
        "transforms.outbox.table.fields.additional.placement": ",".join([
            "event_id:envelope:event_id", "event_type:envelope:event_type", "aggregate_id:envelope:entity_id",
            "tenant_id:envelope:tenant_id", "version:envelope:version", "created_at:envelope:timestamp",
        ]),
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        # The key is the entity id as plain bytes, as the relay sends it; the Java producer hashes
        # keys with murmur2 like the relay's murmur2_random, so an entity keeps its partition.
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        **oversized_record_handling(),
    }


def oversized_record_handling() -> dict:
    """One record must never stop a connector (invariant 12).

    The producer may send as much as the topics accept (MAX_MESSAGE_BYTES, above the consumer's
    document limit), so an oversized event reaches Kafka and the consumer dead-letters it with its
    bytes, as it does for the relay. Topics Connect creates itself get the same limit. A record
    that still fails (larger than that, or a converter/transform error) is skipped and logged
    (errors.tolerance=all, KIP-779 for producer errors) instead of failing the task; source
    connectors have no DLQ topic, and reconciliation reports such a document as missing.
    """
    limit = str(searchsync_settings.MAX_MESSAGE_BYTES)
    return {
        # Needs the worker's connector.client.config.override.policy=All (set by devstack/lib/connect.sh).
        "producer.override.max.request.size": limit,
        "topic.creation.default.replication.factor": "-1",
        "topic.creation.default.partitions": str(searchsync_settings.TOPIC_PARTITIONS),
        "topic.creation.default.max.message.bytes": limit,
        "errors.tolerance": "all",
        "errors.log.enable": "true",
        "errors.log.include.messages": "false",  # the record may be megabytes: log its coordinates only
    }


def table_connector_config(slot: str, topic_prefix: str, table: str = "public.catalog_product",
                           snapshot: str = "initial", source: str = source_databases.DEFAULT,
                           publication: str = TABLES_PUBLICATION, time_precision: str = "connect") -> dict:
    """``time_precision``: ``connect`` (milliseconds; what model-backed table blueprints decode) or
    ``adaptive_time_microseconds`` (declared blueprints: a timestamp keeps its microseconds, so a
    streamed document equals one a backfill reads)."""
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        **_database(source),
        "slot.name": slot,
        "publication.name": publication,
        "table.include.list": table,
        "topic.prefix": topic_prefix,
        # The initial snapshot emits every row as op=r: the only way to fill an LSN-versioned index
        # consistently. A stamp-versioned one may stream only ("no_data") and be backfilled instead.
        "snapshot.mode": snapshot,
        "tombstones.on.delete": "false",
        "decimal.handling.mode": "double",
        "time.precision.mode": time_precision,
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        **oversized_record_handling(),
    }


def table_topic(topic_prefix: str, table: str = "public.catalog_product") -> str:
    return f"{topic_prefix}.{table}"


# -- REST ----------------------------------------------------------------------------


def _url(path: str) -> str:
    return searchsync_settings.CONNECT_URL.rstrip("/") + path


def _request(method: str, path: str, **kwargs):
    try:
        response = requests.request(method, _url(path), timeout=30, **kwargs)
    except requests.RequestException as exc:
        raise ConnectError(f"Kafka Connect unreachable at {_url('')}: {exc}") from exc
    if response.status_code >= 400 and response.status_code != 404:
        raise ConnectError(f"{method} {path}: HTTP {response.status_code} {response.text[:500]}")
    return response


def apply(name: str, config: dict) -> None:
    """Create or update a connector (idempotent)."""
    _request("PUT", f"/connectors/{name}/config", json={**config, "name": name})


def delete(name: str) -> None:
    _request("DELETE", f"/connectors/{name}")


def pause(name: str) -> None:
    _request("PUT", f"/connectors/{name}/pause")


def resume(name: str) -> None:
    _request("PUT", f"/connectors/{name}/resume")


def status(name: str) -> dict | None:
    response = _request("GET", f"/connectors/{name}/status")
    return None if response.status_code == 404 else response.json()


def running(name: str) -> bool:
    state = status(name)
    return bool(state) and state["connector"]["state"] == "RUNNING" and all(
        t["state"] == "RUNNING" for t in state.get("tasks", [])) and bool(state.get("tasks"))


def drop_slot(slot: str, source: str = source_databases.DEFAULT) -> None:
    """A connector removed for good must take its slot along, or the slot keeps WAL forever."""
    with connections[source_databases.get(source).alias].cursor() as cur:
        cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE slot_name = %s AND NOT active", [slot])


# -- slot health ---------------------------------------------------------------------


def ensure_publication(name: str, table: str, source: str = source_databases.DEFAULT) -> bool:
    """A publication of ``table`` alone in the source database, for one table connector; True when
    made now. Debezium could create it, but only as the table's owner: made here, once, the
    connector's user needs no more than replication rights."""
    with connections[source_databases.get(source).alias].cursor() as cur:
        cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [name])
        if cur.fetchone():
            return False
        schema, _, relation = table.rpartition(".")
        quote = connections[source_databases.get(source).alias].ops.quote_name
        cur.execute(f"CREATE PUBLICATION {quote(name)} FOR TABLE "
                    f"{quote(schema or 'public')}.{quote(relation)}")
        return True


def drop_publication(name: str, source: str = source_databases.DEFAULT) -> None:
    with connections[source_databases.get(source).alias].cursor() as cur:
        cur.execute(f"DROP PUBLICATION IF EXISTS {connections[source_databases.get(source).alias].ops.quote_name(name)}")


# -- slot health ---------------------------------------------------------------------


@dataclass(frozen=True)
class SlotHealth:
    name: str
    plugin: str
    active: bool
    retained_bytes: int  # WAL the slot keeps on disk (restart_lsn → now)
    unconfirmed_bytes: int  # WAL written but not yet confirmed by the consumer
    source: str = source_databases.DEFAULT  # the source database whose WAL it holds

    @property
    def alarming(self) -> bool:
        return self.retained_bytes > searchsync_settings.SLOT_LAG_ALERT_BYTES

    @property
    def subject(self) -> str:
        """The slot's name in alerts: slot names are unique per database, not per server."""
        return self.name if self.source == source_databases.DEFAULT else f"{self.source}/{self.name}"


class SlotsUnreadable(RuntimeError):
    """A source database did not answer: its slots are unknown (not healthy, not gone)."""


def replication_slots(strict: bool = False) -> list[SlotHealth]:
    """The logical replication slots of every source database, searchsync's own first.

    A source database that does not answer is left out (the dependencies panel reports it), or
    raises ``SlotsUnreadable`` with ``strict``: alerts must not clear what they could not read."""
    slots, failed = [], []
    for source in source_databases.declared().values():
        try:
            with connections[source.alias].cursor() as cur:
                cur.execute("""
                    SELECT slot_name, coalesce(plugin, ''), active,
                           coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint,
                           coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint
                    FROM pg_replication_slots WHERE database = current_database() ORDER BY slot_name
                """)
                slots.extend(SlotHealth(*row, source=source.name) for row in cur.fetchall())
        except Exception as exc:  # noqa: BLE001 — one unreachable source must not hide the others
            if source.name == source_databases.DEFAULT:
                raise
            failed.append(f"{source.name}: {exc}")
    if failed and strict:
        raise SlotsUnreadable("; ".join(failed))
    return slots


# -- what this installation needs ----------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """One connector to apply: its name and config, where its slot lives, the publication it reads."""
    name: str
    config: dict
    source: str
    publication: str
    table: str

    @property
    def slot(self) -> str:
        return self.config["slot.name"]


def _slot_name(*parts: str) -> str:
    # Slot names are unique per server (not per database) and may hold only [a-z0-9_].
    return "_".join(parts).lower().replace("-", "_")


def wanted_connectors() -> list[Wanted]:
    """Every connector this installation needs, per source database:

    - with SEARCHSYNC_PUBLISHER=debezium, an outbox router in each source database that has the
      outbox (searchsync's own always; another once ``outbox install`` put the contract there);
    - a table connector for every enabled blueprint fed by table changes, in its source database:
      a model-backed one reads ``catalog_product`` in searchsync's own, a declared one its table.
    """
    from indexing.blueprints.relations import RelationSpec, qualified_name
    from indexing.outbox.sql_install import installed

    prefix = searchsync_settings.SLOT_PREFIX
    wanted = []
    if searchsync_settings.PUBLISHER == "debezium":
        for source in source_databases.declared().values():
            default = source.name == source_databases.DEFAULT
            if not default and installed(source.alias) is None:
                continue
            suffix = () if default else (source.name,)
            slot = _slot_name(prefix, "outbox", *suffix)
            wanted.append(Wanted("-".join((prefix, "outbox", *suffix)), outbox_connector_config(slot, source=source.name),
                                 source.name, OUTBOX_PUBLICATION, "public.transactional_outbox"))
    for blueprint in IndexBlueprint.objects.filter(enabled=True, event_format=EventFormat.DEBEZIUM_TABLE):
        slot = _slot_name(prefix, blueprint.name)
        if blueprint.relation:
            spec = RelationSpec.of(blueprint.relation)
            table = qualified_name(spec)
            publication = _slot_name(prefix, blueprint.name)
            config = table_connector_config(slot, blueprint.topic[:-len(table) - 1], table=table, source=spec.database,
                                            publication=publication, time_precision="adaptive_time_microseconds")
            wanted.append(Wanted(f"{prefix}-table-{blueprint.name}", config, spec.database, publication, table))
        else:
            wanted.append(Wanted(f"{prefix}-table-{blueprint.name}",
                                 table_connector_config(slot, blueprint.topic.rsplit(".public.", 1)[0]),
                                 source_databases.DEFAULT, TABLES_PUBLICATION, "public.catalog_product"))
    return wanted


def apply_wanted(item: Wanted) -> None:
    """The publication (made once), then the connector (created or updated)."""
    ensure_publication(item.publication, item.table, item.source)
    apply(item.name, item.config)


def remove_wanted(item: Wanted) -> None:
    """The connector, its slot (or it keeps WAL forever) and a publication made for it alone."""
    delete(item.name)
    drop_slot(item.slot, item.source)
    if item.publication not in (OUTBOX_PUBLICATION, TABLES_PUBLICATION):
        drop_publication(item.publication, item.source)
