"""Categories: a tree (parent → children) whose path from the root every product document shows.
A rename or a move fans out to every product of the subtree (declared in ``apps.py``)."""

from django.db import transaction

from . import stamps
from .brands import InUse
from .models import Category, InvalidMove, check_parent  # noqa: F401 (InvalidMove is part of this API)

FIELDS = ("name", "parent_id")


def _parent_id(value):
    return value.pk if hasattr(value, "pk") else value


@transaction.atomic
def create_category(*, tenant_id: str, name: str, parent=None) -> Category:
    stamps.lock_category_writes()
    parent_id = _parent_id(parent)
    check_parent(None, parent_id, tenant_id)
    return Category.objects.create(tenant_id=tenant_id, name=name, parent_id=parent_id,
                                   change_stamp=stamps.next_stamp())


@transaction.atomic
def update_category(category_id: int, **changes) -> Category:
    """Rename (``name``) or move (``parent``); the stamp covers the subtree's documents through their path."""
    stamps.lock_category_writes()  # also keeps two moves from building a cycle together
    category = Category.objects.select_for_update().get(pk=category_id)
    fields = []
    for name, value in changes.items():
        if name in ("parent", "parent_id"):
            value = _parent_id(value)
            check_parent(category.pk, value, category.tenant_id)
            category.parent_id, name = value, "parent"
        elif name == "name":
            category.name = value
        else:
            raise ValueError(f"unknown category field {name!r}")
        fields.append(name)
    category.change_stamp = stamps.next_stamp()
    category.save(update_fields=[*fields, "change_stamp", "updated_at"])
    return category


@transaction.atomic
def delete_category(category_id: int) -> None:
    stamps.lock_category_writes()
    category = Category.objects.select_for_update().get(pk=category_id)
    if category.products.exists():
        raise InUse(f"category {category_id} is used by {category.products.count()} products; move them first")
    if category.children.exists():
        raise InUse(f"category {category_id} has {category.children.count()} subcategories; move or delete them first")
    category.delete()
