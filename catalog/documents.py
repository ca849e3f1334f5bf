"""The "products" blueprint's documents: built from the product, its brand and its category path,
read in one statement (one snapshot), versioned by the highest change stamp among those rows."""

from __future__ import annotations

from django.db import connections

from indexing.blueprints.contracts import Event, event_type_for
from indexing.core.sql_arrays import int_array

# The aggregate type of product events: their topic, event types and blueprint.
AGGREGATE_TYPE = "product"

# Payload keys whose index field has another name (events written before brands were rows).
RENAMED = {"brand_name": "brand"}

# One statement, so every field and the version come from the same snapshot. Category paths are
# walked from each product's category to the root; the depth bound only guards against a cycle.
DOCUMENTS_SQL = """
WITH RECURSIVE chain AS (
    SELECT c.id AS leaf, c.parent_id, c.name, c.change_stamp, c.updated_at, 0 AS depth
      FROM catalog_category c
     WHERE c.id IN (SELECT category_id FROM catalog_product WHERE id = ANY(%(ids)s::bigint[]))
    UNION ALL
    SELECT chain.leaf, p.parent_id, p.name, p.change_stamp, p.updated_at, chain.depth + 1
      FROM chain JOIN catalog_category p ON p.id = chain.parent_id
     WHERE chain.depth < 64
), paths AS (
    SELECT leaf, array_agg(name ORDER BY depth DESC) AS path, MAX(change_stamp) AS stamp, MAX(updated_at) AS updated_at
      FROM chain GROUP BY leaf
)
SELECT p.id, p.tenant_id, p.title, p.description, COALESCE(b.name, p.brand_name), p.price_minor, p.available_qty,
       COALESCE(paths.path, ARRAY[]::varchar[]),
       GREATEST(p.change_stamp, COALESCE(b.change_stamp, 0), COALESCE(paths.stamp, 0)),
       GREATEST(p.updated_at, COALESCE(b.updated_at, p.updated_at), COALESCE(paths.updated_at, p.updated_at))
  FROM catalog_product p
  LEFT JOIN catalog_brand b ON b.id = p.brand_id
  LEFT JOIN paths ON paths.leaf = p.category_id
 WHERE p.id = ANY(%(ids)s::bigint[])
 ORDER BY p.id
"""

# Document fields that come from other rows: reconciliation compares them too.
JOINED_FIELDS = ("brand", "category_path")


def build_product(event: Event) -> dict:
    payload = event.payload
    # A plain copy unless an old key is there to rename (the copy runs for every event indexed).
    document = dict(payload) if RENAMED.keys().isdisjoint(payload) else \
        {RENAMED.get(key, key): value for key, value in payload.items()}
    # Debezium's payload expansion drops empty arrays: a product outside any category arrives
    # without the key, and its document must say "no category" all the same.
    document.setdefault("category_path", [])
    # Payload fields the mapping does not know are kept here on purpose: the
    # pipeline drops and reports them, so a new column is seen, not silently lost.
    document.update(
        id=event.entity_id,
        tenant_id=event.tenant_id,
        version=event.version,
        updated_at=event.timestamp.isoformat(),
        deleted=False,
    )
    return document


def product_events(ids, using: str = "default") -> list[Event]:
    """Upsert events of the products ``ids`` as the database holds them now, in id order."""
    ids = [int(i) for i in ids]
    if not ids:
        return []
    with connections[using].cursor() as cur:
        cur.execute(DOCUMENTS_SQL, {"ids": int_array(ids)})
        rows = cur.fetchall()
    upsert = event_type_for(AGGREGATE_TYPE, False)
    return [
        Event(event_id="", event_type=upsert, entity_id=str(pk), tenant_id=tenant, version=version,
              timestamp=updated_at,
              payload={"title": title, "description": description, "brand": brand, "price_minor": price,
                       "available_qty": qty, "category_path": list(path)})
        for pk, tenant, title, description, brand, price, qty, path, version, updated_at in rows
    ]


def document_versions(ids, using: str = "default") -> dict[str, int]:
    return {event.entity_id: event.version for event in product_events(ids, using)}


def product_event(product) -> Event:
    """A product row as the upsert event that would have produced its current state (read where the row was)."""
    return product_events([product.pk], product._state.db or "default")[0]


def product_row_events(rows) -> list[Event]:
    """Events of rows read together (a backfill page): one statement on the rows' database."""
    rows = list(rows)
    return product_events([row.pk for row in rows], rows[0]._state.db or "default") if rows else []
