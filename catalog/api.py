"""REST API for API clients: products, written through catalog.services."""

from django.shortcuts import get_object_or_404
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from . import services
from .permissions import WRITE_PRODUCTS
from .models import Product
from .serializers import ProductSerializer


class ProductViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ProductSerializer
    queryset = Product.objects.all()
    # Reading is for everyone logged in; writes need the role bootstrap gives operators and admins.
    change_permission = WRITE_PRODUCTS

    def get_queryset(self):
        qs = super().get_queryset()
        tenant = self.request.query_params.get("tenant_id")
        return qs.filter(tenant_id=tenant) if tenant else qs

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.create_product(**serializer.validated_data)
        return Response(self.get_serializer(product).data, status=status.HTTP_201_CREATED)

    def update(self, request, pk=None, partial=False):
        product = get_object_or_404(Product, pk=pk)
        serializer = self.get_serializer(product, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        product = services.update_product(product.pk, **serializer.validated_data)
        return Response(self.get_serializer(product).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    def destroy(self, request, pk=None):
        product = get_object_or_404(Product, pk=pk)
        services.delete_product(product.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
