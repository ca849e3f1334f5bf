from rest_framework.routers import DefaultRouter

from .api import BackfillViewSet, CutoverViewSet

router = DefaultRouter()
router.register("backfills", BackfillViewSet, basename="backfill")
router.register("cutovers", CutoverViewSet, basename="cutover")

urlpatterns = router.urls
