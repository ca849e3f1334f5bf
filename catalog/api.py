"""REST API for API clients: products, brands and categories, written through their services."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from indexing.pipeline import read_your_writes
from indexing.pipeline.read_your_writes import PARAMETERS as WAIT_PARAMETERS, SearchOutcomeSerializer

from . import brands, categories, services
from .auditing import record_write
from .models import Brand, Category, Product
from .permissions import WRITE_PRODUCTS
from .serializers import (BrandSerializer, BrandUpdateSerializer, CategorySerializer, CategoryUpdateSerializer,
                          ProductSerializer)


def _refusing_foreign_rows(function, *args, **kwargs):
    """The service's own tenant check (a row that changed since the serializer looked) as a field error."""
    try:
        return function(*args, **kwargs)
    except services.ForeignTenant as exc:
        raise ValidationError({exc.field: [str(exc)]}) from exc


class TenantFiltered:
    def get_queryset(self):
        qs = super().get_queryset()
        tenant = self.request.query_params.get("tenant_id")
        return qs.filter(tenant_id=tenant) if tenant else qs


class ProductWriteSerializer(ProductSerializer):
    """A product write's answer (documentation only: the views add ``search`` themselves)."""

    # Not read_only: the schema generator lists read-only fields of an answer as always present,
    # and ``search`` is there only when the write asked to wait.
    search = SearchOutcomeSerializer(required=False,
                                     help_text="With wait=searchable: whether the change is searchable.")

    class Meta(ProductSerializer.Meta):
        fields = [*ProductSerializer.Meta.fields, "search"]


class ProductViewSet(TenantFiltered, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ProductSerializer
    queryset = Product.objects.all()
    # Reading is for everyone logged in; writes need the role bootstrap gives operators and admins.
    change_permission = WRITE_PRODUCTS

    # Every write may ask to return once it is searchable (?wait=searchable&timeout=5): the answer
    # then carries "search" with the outcome. Parameters are checked before anything is written.
    @extend_schema(parameters=WAIT_PARAMETERS, responses={201: ProductWriteSerializer})
    def create(self, request):
        wait = read_your_writes.from_request(request)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with read_your_writes.writing(wait) as written, transaction.atomic():
            product = _refusing_foreign_rows(services.create_product, **serializer.validated_data)
            record_write(request.user, "product", "create", product, serializer.validated_data)
        return Response({**self.get_serializer(product).data, **read_your_writes.answer(wait, written)},
                        status=status.HTTP_201_CREATED)

    @extend_schema(parameters=WAIT_PARAMETERS, responses=ProductWriteSerializer)
    def update(self, request, pk=None, partial=False):
        wait = read_your_writes.from_request(request)
        product = get_object_or_404(Product, pk=pk)
        serializer = self.get_serializer(product, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        with read_your_writes.writing(wait) as written, transaction.atomic():
            product = _refusing_foreign_rows(services.update_product, product.pk, **serializer.validated_data)
            record_write(request.user, "product", "update", product, serializer.validated_data)
        return Response({**self.get_serializer(product).data, **read_your_writes.answer(wait, written)})

    @extend_schema(parameters=WAIT_PARAMETERS, responses=ProductWriteSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    @extend_schema(parameters=WAIT_PARAMETERS, responses={
        204: None,
        200: inline_serializer("ProductDeleteWaited", {"search": SearchOutcomeSerializer()})})
    def destroy(self, request, pk=None):
        wait = read_your_writes.from_request(request)
        product = get_object_or_404(Product, pk=pk)
        with read_your_writes.writing(wait) as written, transaction.atomic():
            services.delete_product(product.pk)
            record_write(request.user, "product", "delete", product)
        if wait is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        # With a wait there is something to say: whether the delete reached search.
        return Response(read_your_writes.answer(wait, written))


class JoinedRowViewSet(TenantFiltered, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Rows product documents are built from: a change fans out to every product showing it."""

    change_permission = WRITE_PRODUCTS
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    update_serializer_class = None

    def get_serializer_class(self):
        if self.action == "partial_update":
            return self.update_serializer_class
        return self.serializer_class

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = self._write("create", None, self.create_row, **serializer.validated_data)
        return Response(self.serializer_class(row).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        row = get_object_or_404(self.queryset.model, pk=pk)
        serializer = self.get_serializer(row, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        row = self._write("update", row, self.update_row, row.pk, **serializer.validated_data)
        return Response(self.serializer_class(row).data)

    def destroy(self, request, pk=None):
        row = get_object_or_404(self.queryset.model, pk=pk)
        self._write("delete", row, self.delete_row, row.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _write(self, verb, row, function, *args, **kwargs):
        """Run one write and record it in the audit trail, in one transaction."""
        try:
            with transaction.atomic():
                written = function(*args, **kwargs)
                record_write(self.request.user, self.audit_kind, verb, row if verb == "delete" else written, kwargs)
                return written
        except brands.InUse as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        except categories.InvalidMove as exc:
            raise ValidationError({"parent": [str(exc)]}) from exc


class BrandViewSet(JoinedRowViewSet):
    audit_kind = "brand"
    serializer_class = BrandSerializer
    update_serializer_class = BrandUpdateSerializer
    queryset = Brand.objects.all()
    create_row = staticmethod(brands.create_brand)
    update_row = staticmethod(brands.update_brand)
    delete_row = staticmethod(brands.delete_brand)


class CategoryViewSet(JoinedRowViewSet):
    audit_kind = "category"
    serializer_class = CategorySerializer
    update_serializer_class = CategoryUpdateSerializer
    queryset = Category.objects.select_related("parent")
    create_row = staticmethod(categories.create_category)
    update_row = staticmethod(categories.update_category)
    delete_row = staticmethod(categories.delete_category)
