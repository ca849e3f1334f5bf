from rest_framework import serializers

from config.strict_fields import StrictCharField

from .models import DESCRIPTION_MAX_LENGTH, Product


class ProductSerializer(serializers.ModelSerializer):
    # Strings only (``0`` is a 400, not "0"), no NUL, bounded: see config.strict_fields.
    tenant_id = StrictCharField(min_length=1, max_length=64, allow_blank=False)
    title = StrictCharField(min_length=1, max_length=300, allow_blank=False, trim_whitespace=True,
                            help_text="A non-blank string (surrounding whitespace is trimmed); numbers are refused.")
    description = StrictCharField(max_length=DESCRIPTION_MAX_LENGTH, allow_blank=True, required=False)
    brand_name = StrictCharField(max_length=200, allow_blank=True, required=False)

    class Meta:
        model = Product
        fields = ["id", "tenant_id", "title", "description", "brand_name", "price_minor", "available_qty", "version",
                  "updated_at"]
        read_only_fields = ["id", "version", "updated_at"]
        extra_kwargs = {
            "price_minor": {"min_value": 0},
            "available_qty": {"min_value": 0},
        }
