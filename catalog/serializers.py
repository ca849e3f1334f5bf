from rest_framework import serializers

from .models import Product


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "tenant_id", "title", "description", "brand_name", "price_minor", "available_qty", "version",
                  "updated_at"]
        read_only_fields = ["id", "version", "updated_at"]
        extra_kwargs = {
            "price_minor": {"min_value": 0},
            "available_qty": {"min_value": 0},
            "title": {"allow_blank": False},
        }
