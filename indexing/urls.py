from rest_framework.routers import DefaultRouter

from .api import DeadLetterViewSet

router = DefaultRouter()
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")

urlpatterns = router.urls

from .reconciliation_api import ReconciliationViewSet  # noqa: E402

router.register("reconciliations", ReconciliationViewSet, basename="reconciliation")
urlpatterns = router.urls  # re-read: register() drops the router's cached urls
