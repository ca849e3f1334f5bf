"""Catalog writes. Each bumps the product's version and records the change in
the outbox in the same transaction — the only way products change."""

from __future__ import annotations

from django.db import transaction

from indexing import outbox

from .models import Product

AGGREGATE_TYPE = "product"
PAYLOAD_FIELDS = ("title", "description", "brand_name", "price_minor", "available_qty")


def payload_of(product: Product) -> dict:
    return {name: getattr(product, name) for name in PAYLOAD_FIELDS}


def _emit(product: Product, delete: bool = False) -> None:
    outbox.emit(
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=product.pk,
        version=product.version,
        payload=None if delete else payload_of(product),
        tenant_id=product.tenant_id,
        delete=delete,
    )


@transaction.atomic
def create_product(**fields) -> Product:
    product = Product.objects.create(version=1, **fields)
    _emit(product)
    return product


@transaction.atomic
def update_product(product_id: int, **changes) -> Product:
    # The row lock orders concurrent writers of one product, so versions never repeat.
    product = Product.objects.select_for_update().get(pk=product_id)
    for name, value in changes.items():
        if name not in PAYLOAD_FIELDS and name != "tenant_id":
            raise ValueError(f"unknown product field {name!r}")
        setattr(product, name, value)
    product.version += 1
    product.save()
    _emit(product)
    return product


@transaction.atomic
def delete_product(product_id: int) -> int:
    product = Product.objects.select_for_update().get(pk=product_id)
    product.version += 1
    _emit(product, delete=True)
    product.delete()
    return product.version


@transaction.atomic
def create_products_bulk(rows: list[dict]) -> list[Product]:
    """Insert many products and their outbox events in one transaction (demo data, imports)."""
    from indexing.contracts import event_type_for
    from indexing.models import OutboxEvent

    products = Product.objects.bulk_create([Product(version=1, **row) for row in rows])
    OutboxEvent.objects.bulk_create(
        OutboxEvent(
            aggregate_type=AGGREGATE_TYPE,
            aggregate_id=str(p.pk),
            event_type=event_type_for(AGGREGATE_TYPE, False),
            payload=payload_of(p),
            version=p.version,
            tenant_id=p.tenant_id,
        )
        for p in products
    )
    outbox.notify(AGGREGATE_TYPE)
    return products
