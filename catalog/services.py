"""Catalog writes. Each stamps the product and records the change in the outbox in the same
transaction — the only way products change. See ``catalog.stamps`` for the lock order that makes
a document's version grow with every row it is built from."""

from __future__ import annotations

from django.db import transaction

from indexing.outbox import emit as outbox

from . import stamps
from .documents import AGGREGATE_TYPE, product_events
from .models import Brand, Category, Product

# Fields a caller may set; brand and category are the ids of their rows.
FIELDS = ("title", "description", "brand_name", "price_minor", "available_qty", "brand_id", "category_id")
ALIASES = {"brand": "brand_id", "category": "category_id"}


def _fields(fields: dict) -> dict:
    out = {}
    for name, value in fields.items():
        name = ALIASES.get(name, name)
        if hasattr(value, "pk"):
            value = value.pk
        if name not in FIELDS and name != "tenant_id":
            raise ValueError(f"unknown product field {name!r}")
        out[name] = value
    return out


class ForeignTenant(ValueError):
    """A product may show only its own tenant's brand and categories."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_tenant(tenant_id: str, brand_id=None, category_id=None) -> None:
    """Refuse a brand or category of another tenant (or one that does not exist)."""
    for field, model, pk in (("brand", Brand, brand_id), ("category", Category, category_id)):
        if pk is None:
            continue
        owner = model.objects.filter(pk=pk).values_list("tenant_id", flat=True).first()
        if owner is None:
            raise ForeignTenant(field, f"{field} {pk} does not exist")
        if owner != tenant_id:
            raise ForeignTenant(field, f"{field} {pk} belongs to another tenant than the product's ({tenant_id!r})")


def _emit(product: Product) -> None:
    # Built by the same statement backfills and reconciliation use, inside this transaction:
    # it sees this write, and the dependency locks hold the joined rows as they will commit.
    event = product_events([product.pk])[0]
    outbox.emit(aggregate_type=AGGREGATE_TYPE, aggregate_id=product.pk, version=event.version,
                payload=event.payload, tenant_id=product.tenant_id)


@transaction.atomic
def create_product(**fields) -> Product:
    fields = _fields(fields)
    stamps.share_lock_dependencies([fields.get("brand_id")], [fields.get("category_id")])
    check_tenant(fields.get("tenant_id"), fields.get("brand_id"), fields.get("category_id"))
    product = Product.objects.create(version=1, change_stamp=stamps.next_stamp(), **fields)
    _emit(product)
    return product


@transaction.atomic
def update_product(product_id: int, **changes) -> Product:
    changes = _fields(changes)
    # The row lock orders concurrent writers of one product; the dependency locks (old and new
    # brand and category) order it with brand and category writes. The stamp is taken after both.
    product = Product.objects.select_for_update().get(pk=product_id)
    stamps.share_lock_dependencies([product.brand_id, changes.get("brand_id")],
                                   [product.category_id, changes.get("category_id")])
    for name, value in changes.items():
        setattr(product, name, value)
    check_tenant(product.tenant_id, product.brand_id, product.category_id)
    product.version += 1
    product.change_stamp = stamps.next_stamp()
    product.save()
    _emit(product)
    return product


@transaction.atomic
def delete_product(product_id: int) -> int:
    """Returns the tombstone's version: a stamp above every version the document had."""
    product = Product.objects.select_for_update().get(pk=product_id)
    stamps.share_lock_dependencies([product.brand_id], [product.category_id])
    version = stamps.next_stamp()
    product.version += 1
    outbox.emit(aggregate_type=AGGREGATE_TYPE, aggregate_id=product.pk, version=version, payload=None,
                tenant_id=product.tenant_id, delete=True)
    product.delete()
    return version


def _check_tenants(rows: list[dict]) -> None:
    """``check_tenant`` for many rows: one query per referenced model."""
    for field, model in (("brand", Brand), ("category", Category)):
        wanted = {r[f"{field}_id"] for r in rows if r.get(f"{field}_id") is not None}
        owners = dict(model.objects.filter(pk__in=wanted).values_list("pk", "tenant_id"))
        for row in rows:
            pk = row.get(f"{field}_id")
            if pk is not None and owners.get(pk) != row.get("tenant_id"):
                check_tenant(row.get("tenant_id"), **{f"{field}_id": pk})


@transaction.atomic
def create_products_bulk(rows: list[dict]) -> list[Product]:
    """Insert many products and their outbox events in one transaction (demo data, imports)."""
    rows = [_fields(row) for row in rows]
    stamps.share_lock_dependencies([r.get("brand_id") for r in rows], [r.get("category_id") for r in rows])
    _check_tenants(rows)
    new_stamps = stamps.next_stamps(len(rows))
    products = Product.objects.bulk_create(
        [Product(version=1, change_stamp=stamp, **row) for row, stamp in zip(rows, new_stamps)])
    outbox.emit_many(AGGREGATE_TYPE, product_events([p.pk for p in products]))
    return products
