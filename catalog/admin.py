from django.contrib import admin

from .models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    # Read-only: writing here would bypass the outbox; use the API or catalog.services.
    list_display = ("id", "tenant_id", "title", "brand", "brand_name", "category", "price_minor", "available_qty",
                    "version", "change_stamp", "updated_at")
    list_filter = ("tenant_id",)
    search_fields = ("title", "brand_name")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
