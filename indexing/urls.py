from rest_framework.routers import DefaultRouter

from indexing.api import DeadLetterViewSet
from indexing.reconciliation_api import ReconciliationViewSet

router = DefaultRouter()
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")
router.register("reconciliations", ReconciliationViewSet, basename="reconciliation")

urlpatterns = router.urls
