from rest_framework.routers import DefaultRouter

from .api import BrandViewSet, CategoryViewSet, ProductViewSet

router = DefaultRouter()
router.register("products", ProductViewSet, basename="product")
router.register("brands", BrandViewSet, basename="brand")
router.register("categories", CategoryViewSet, basename="category")

urlpatterns = router.urls
