from rest_framework.routers import DefaultRouter

from .api import DeadLetterViewSet
from .reconciliation_api import ReconciliationViewSet

router = DefaultRouter()
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")
router.register("reconciliations", ReconciliationViewSet, basename="reconciliation")

urlpatterns = router.urls
