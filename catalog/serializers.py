from rest_framework import serializers

from config.strict_fields import StrictCharField

from .models import DESCRIPTION_MAX_LENGTH, Brand, Category, Product

MAX_ID = 2**63 - 1


class StrictRelatedField(serializers.PrimaryKeyRelatedField):
    """An id as a JSON integer (``"5"`` and ``true`` are refused, as are ids no bigint holds)."""

    default_error_messages = {"not_an_integer": "Must be an integer id, not {kind}."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer", kind=type(data).__name__)
        if not 1 <= data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


class ProductSerializer(serializers.ModelSerializer):
    # Strings only (``0`` is a 400, not "0"), no NUL, bounded: see config.strict_fields.
    tenant_id = StrictCharField(min_length=1, max_length=64, allow_blank=False)
    title = StrictCharField(min_length=1, max_length=300, allow_blank=False, trim_whitespace=True,
                            help_text="A non-blank string (surrounding whitespace is trimmed); numbers are refused.")
    description = StrictCharField(max_length=DESCRIPTION_MAX_LENGTH, allow_blank=True, required=False)
    brand_name = StrictCharField(max_length=200, allow_blank=True, required=False,
                                 help_text="Free text shown when the product has no brand.")
    brand = StrictRelatedField(queryset=Brand.objects.all(), allow_null=True, required=False,
                               help_text="Id of a brand; the document shows its current name.")
    category = StrictRelatedField(queryset=Category.objects.all(), allow_null=True, required=False,
                                  help_text="Id of a category; the document shows its path from the root.")

    class Meta:
        model = Product
        fields = ["id", "tenant_id", "title", "description", "brand_name", "brand", "category", "price_minor",
                  "available_qty", "version", "updated_at"]
        read_only_fields = ["id", "version", "updated_at"]
        extra_kwargs = {
            "price_minor": {"min_value": 0},
            "available_qty": {"min_value": 0},
        }

    def validate(self, attrs):
        # A product shows only its own tenant's brand and categories (the service refuses too).
        tenant = attrs.get("tenant_id", getattr(self.instance, "tenant_id", None))
        errors = {}
        for field in ("brand", "category"):
            row = attrs[field] if field in attrs else getattr(self.instance, field, None)
            if row is not None and row.tenant_id != tenant:
                errors[field] = [f"{field} {row.pk} belongs to tenant {row.tenant_id!r}, not the product's {tenant!r}."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class BrandSerializer(serializers.ModelSerializer):
    tenant_id = StrictCharField(min_length=1, max_length=64, allow_blank=False)
    name = StrictCharField(min_length=1, max_length=200, allow_blank=False, trim_whitespace=True)
    country = StrictCharField(max_length=2, allow_blank=True, required=False, help_text="ISO 3166-1 alpha-2")

    class Meta:
        model = Brand
        fields = ["id", "tenant_id", "name", "country", "version", "updated_at"]
        read_only_fields = ["id", "version", "updated_at"]


def fixed_tenant_field():
    return serializers.CharField(read_only=True, help_text="Fixed at creation: an update naming another tenant is a 400.")


def refuse_tenant_change(serializer, kind: str) -> None:
    """A brand or category stays in its tenant (products of that tenant reference it). ``tenant_id`` is read-only
    on update; naming another one is refused rather than silently ignored, so the client learns it was not moved."""
    data = serializer.initial_data
    if hasattr(data, "get") and "tenant_id" in data and data.get("tenant_id") != serializer.instance.tenant_id:
        raise serializers.ValidationError({"tenant_id": [
            f"A tenant is fixed at creation: this {kind} stays in tenant {serializer.instance.tenant_id!r}."]})


class BrandUpdateSerializer(BrandSerializer):
    tenant_id = fixed_tenant_field()

    class Meta(BrandSerializer.Meta):
        read_only_fields = ["id", "tenant_id", "version", "updated_at"]

    def validate(self, attrs):
        refuse_tenant_change(self, "brand")
        return super().validate(attrs)


class CategorySerializer(serializers.ModelSerializer):
    tenant_id = StrictCharField(min_length=1, max_length=64, allow_blank=False)
    name = StrictCharField(min_length=1, max_length=200, allow_blank=False, trim_whitespace=True)
    parent = StrictRelatedField(queryset=Category.objects.all(), allow_null=True, required=False)
    path = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = ["id", "tenant_id", "name", "parent", "path", "updated_at"]
        read_only_fields = ["id", "path", "updated_at"]

    def get_path(self, category) -> list[str]:
        names, node, depth = [], category, 0
        while node is not None and depth < 64:
            names.append(node.name)
            node, depth = node.parent, depth + 1
        return names[::-1]


class CategoryUpdateSerializer(CategorySerializer):
    tenant_id = fixed_tenant_field()

    class Meta(CategorySerializer.Meta):
        read_only_fields = ["id", "tenant_id", "path", "updated_at"]

    def validate(self, attrs):
        refuse_tenant_change(self, "category")
        return super().validate(attrs)
