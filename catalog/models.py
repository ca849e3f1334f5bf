"""The demo source application: products, written only through catalog.services."""

from django.db import models

from indexing.blueprints.dependencies import DependencyQuerySet

from . import stamps
from .stamps import CHANGE_SEQUENCE


class NextStamp(models.Func):
    """``nextval`` of the change sequence, as a column default (rows inserted without a service get one too)."""

    template = f"nextval('{CHANGE_SEQUENCE}')"
    output_field = models.BigIntegerField()

    def __init__(self):
        super().__init__()


# Bounds of what the API accepts: an event built from a product stays far below the Kafka
# message limit, so the relay's dead letters remain the exception they are meant to be.
DESCRIPTION_MAX_LENGTH = 10_000


class Product(models.Model):
    id = models.BigAutoField(primary_key=True)
    tenant_id = models.CharField(max_length=64, db_index=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, max_length=DESCRIPTION_MAX_LENGTH)
    # Free text kept for rows without a brand (older data, imports); a product with a brand shows its name.
    brand_name = models.CharField(max_length=200, blank=True)
    brand = models.ForeignKey("Brand", null=True, blank=True, on_delete=models.PROTECT, related_name="products")
    category = models.ForeignKey("Category", null=True, blank=True, on_delete=models.PROTECT, related_name="products")
    price_minor = models.BigIntegerField()
    available_qty = models.IntegerField()
    # Counts this product's own writes. The document's external version is not this but the
    # highest change_stamp of the product, its brand and its category's ancestors (catalog.documents).
    version = models.BigIntegerField(default=1)
    change_stamp = models.BigIntegerField(db_default=NextStamp(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["id"]
        permissions = [("write_products", "Can create, change and delete products through the API")]

    def __str__(self):
        return f"{self.title} (#{self.id} v{self.version})"


class BrandQuerySet(DependencyQuerySet):
    """``Brand.objects.filter(...).update(name=...)`` is a supported bulk rename: it fans out."""

    def lock_writes(self):
        stamps.lock_brand_writes()


class CategoryQuerySet(DependencyQuerySet):
    """``Category.objects.filter(...).update(parent=...)`` is a supported bulk move: it fans out, and
    each moved row gets the tree checks a single move gets (no cycle, same tenant, bounded depth)."""

    def lock_writes(self):
        stamps.lock_category_writes()  # also keeps a bulk move and a single move from building a cycle

    def check_update(self, pks, changes):
        if "parent" not in changes and "parent_id" not in changes:
            return
        parent = changes.get("parent", changes.get("parent_id"))
        parent_id = parent.pk if hasattr(parent, "pk") else parent
        for pk, tenant_id in self.model._base_manager.using(self.db).filter(pk__in=pks).values_list("pk", "tenant_id"):
            check_parent(pk, parent_id, tenant_id)


class Brand(models.Model):
    """A second searchable entity, indexed on its own (blueprint "brands"), written only through catalog.brands."""

    id = models.BigAutoField(primary_key=True)
    tenant_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    version = models.BigIntegerField(default=1)
    change_stamp = models.BigIntegerField(db_default=NextStamp(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = BrandQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.name} (#{self.id} v{self.version})"


MAX_DEPTH = 32


class InvalidMove(ValueError):
    pass


def check_parent(category_id, parent_id, tenant_id) -> None:
    """The new parent exists in the same tenant, is not the category or one of its descendants,
    and the tree stays shallow enough for a path."""
    if parent_id is None:
        return
    depth, node = 0, Category.objects.filter(pk=parent_id).first()
    if node is None:
        raise InvalidMove(f"parent {parent_id} does not exist")
    if node.tenant_id != tenant_id:
        raise InvalidMove("a category's parent belongs to the same tenant")
    while node is not None:
        if category_id is not None and node.pk == category_id:
            raise InvalidMove("a category cannot move under itself or one of its descendants")
        depth += 1
        if depth >= MAX_DEPTH:
            raise InvalidMove(f"categories nest at most {MAX_DEPTH} levels")
        node = node.parent


class Category(models.Model):
    """A node of the category tree; products show its path from the root. Written only through catalog.categories."""

    id = models.BigAutoField(primary_key=True)
    tenant_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    change_stamp = models.BigIntegerField(db_default=NextStamp(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = CategoryQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "categories"

    def __str__(self):
        return f"{self.name} (#{self.id})"
