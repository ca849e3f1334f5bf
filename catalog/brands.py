"""Brands: written only here, each write with its outbox event in the same transaction."""

from django.db import transaction

from indexing.registry import emit_change

from .models import Brand

FIELDS = ("name", "country")


def brand_payload(brand: Brand) -> dict:
    return {"name": brand.name, "country": brand.country}


@transaction.atomic
def create_brand(**fields) -> Brand:
    brand = Brand.objects.create(version=1, **fields)
    emit_change(brand)
    return brand


@transaction.atomic
def update_brand(brand_id: int, **changes) -> Brand:
    brand = Brand.objects.select_for_update().get(pk=brand_id)  # orders concurrent writers: versions never repeat
    for name, value in changes.items():
        if name not in FIELDS:
            raise ValueError(f"unknown brand field {name!r}")
        setattr(brand, name, value)
    brand.version += 1
    brand.save()
    emit_change(brand)
    return brand


@transaction.atomic
def delete_brand(brand_id: int) -> int:
    brand = Brand.objects.select_for_update().get(pk=brand_id)
    brand.version += 1
    emit_change(brand, delete=True)
    brand.delete()
    return brand.version
