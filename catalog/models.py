"""The demo source application: products, written only through catalog.services."""

from django.db import models


# Bounds of what the API accepts: an event built from a product stays far below the Kafka
# message limit, so the relay's dead letters remain the exception they are meant to be.
DESCRIPTION_MAX_LENGTH = 10_000


class Product(models.Model):
    id = models.BigAutoField(primary_key=True)
    tenant_id = models.CharField(max_length=64, db_index=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, max_length=DESCRIPTION_MAX_LENGTH)
    brand_name = models.CharField(max_length=200, blank=True)
    price_minor = models.BigIntegerField()
    available_qty = models.IntegerField()
    # Strictly increasing per product; it becomes the index's external version.
    version = models.BigIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["id"]
        permissions = [("write_products", "Can create, change and delete products through the API")]

    def __str__(self):
        return f"{self.title} (#{self.id} v{self.version})"


class Brand(models.Model):
    """A second searchable entity, indexed on its own (blueprint "brands"), written only through catalog.brands."""

    id = models.BigAutoField(primary_key=True)
    tenant_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    version = models.BigIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.name} (#{self.id} v{self.version})"
