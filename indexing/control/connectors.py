"""Debezium connectors on Kafka Connect, managed through its REST API.

Two ways Debezium feeds the pipeline:
- the outbox event router reads ``transactional_outbox`` inserts from the WAL and
  publishes them to the same topics, with the same key and the same
  SearchIndexEvent value the relay produces — nothing downstream changes;
- direct table CDC publishes a table's change events (before/after/op/source),
  which a blueprint with ``event_format=debezium_table`` consumes (see debezium.py).
Each connector has its own named replication slot on a pre-created publication
limited to the tables it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from django.db import connections

from indexing.models import IndexBlueprint
from indexing.conf import searchsync_settings

OUTBOX_PUBLICATION = "searchsync_outbox"
TABLES_PUBLICATION = "searchsync_tables"


class ConnectError(RuntimeError):
    pass


def _database() -> dict:
    db = connections["default"].settings_dict
    return {
        "database.hostname": db.get("HOST") or "127.0.0.1",
        "database.port": str(db.get("PORT") or 5432),
        "database.user": db["USER"],
        "database.password": db["PASSWORD"],
        "database.dbname": db["NAME"],
        "plugin.name": "pgoutput",
        "publication.autocreate.mode": "disabled",
    }


def outbox_connector_config(slot: str, topic_prefix: str | None = None) -> dict:
    prefix = topic_prefix if topic_prefix is not None else searchsync_settings.TOPIC_PREFIX
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        **_database(),
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
                           snapshot: str = "initial") -> dict:
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        **_database(),
        "slot.name": slot,
        "publication.name": TABLES_PUBLICATION,
        "table.include.list": table,
        "topic.prefix": topic_prefix,
        # The initial snapshot emits every row as op=r: the only way to fill an LSN-versioned index
        # consistently. A stamp-versioned one may stream only ("no_data") and be backfilled instead.
        "snapshot.mode": snapshot,
        "tombstones.on.delete": "false",
        "decimal.handling.mode": "double",
        "time.precision.mode": "connect",
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


def drop_slot(slot: str) -> None:
    """A connector removed for good must take its slot along, or the slot keeps WAL forever."""
    with connections["default"].cursor() as cur:
        cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE slot_name = %s AND NOT active", [slot])


# -- slot health ---------------------------------------------------------------------


@dataclass(frozen=True)
class SlotHealth:
    name: str
    plugin: str
    active: bool
    retained_bytes: int  # WAL the slot keeps on disk (restart_lsn → now)
    unconfirmed_bytes: int  # WAL written but not yet confirmed by the consumer

    @property
    def alarming(self) -> bool:
        return self.retained_bytes > searchsync_settings.SLOT_LAG_ALERT_BYTES


def replication_slots() -> list[SlotHealth]:
    with connections["default"].cursor() as cur:
        cur.execute("""
            SELECT slot_name, coalesce(plugin, ''), active,
                   coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint,
                   coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint
            FROM pg_replication_slots WHERE database = current_database() ORDER BY slot_name
        """)
        return [SlotHealth(*row) for row in cur.fetchall()]


def blueprint_uses_tables(blueprint: IndexBlueprint) -> bool:
    return blueprint.fed_by_table_changes
