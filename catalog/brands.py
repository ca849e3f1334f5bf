"""Brands: written only here, each write with its outbox event in the same transaction.

Product documents show their brand's name: a rename fans out to them (declared in ``apps.py``).
Every write takes the dependency lock and a change stamp (``catalog.stamps``)."""

from django.db import transaction

from indexing.control.registry import emit_change

from . import stamps
from .models import Brand

FIELDS = ("name", "country")


class InUse(Exception):
    """A row products still reference cannot be deleted."""


def brand_payload(brand: Brand) -> dict:
    return {"name": brand.name, "country": brand.country}


@transaction.atomic
def create_brand(**fields) -> Brand:
    stamps.lock_brand_writes()
    brand = Brand.objects.create(version=1, change_stamp=stamps.next_stamp(), **fields)
    emit_change(brand)
    return brand


@transaction.atomic
def update_brand(brand_id: int, **changes) -> Brand:
    stamps.lock_brand_writes()
    brand = Brand.objects.select_for_update().get(pk=brand_id)  # orders concurrent writers: versions never repeat
    for name, value in changes.items():
        if name not in FIELDS:
            raise ValueError(f"unknown brand field {name!r}")
        setattr(brand, name, value)
    brand.version += 1
    brand.change_stamp = stamps.next_stamp()
    # update_fields says what changed: only a new name concerns product documents.
    brand.save(update_fields=[*changes, "version", "change_stamp", "updated_at"])
    emit_change(brand)
    return brand


@transaction.atomic
def delete_brand(brand_id: int) -> int:
    stamps.lock_brand_writes()
    brand = Brand.objects.select_for_update().get(pk=brand_id)
    if brand.products.exists():
        raise InUse(f"brand {brand_id} is used by {brand.products.count()} products; reassign them first")
    brand.version += 1
    emit_change(brand, delete=True)
    brand.delete()
    return brand.version
