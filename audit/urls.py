from rest_framework.routers import SimpleRouter

from .api import AuditEventViewSet

router = SimpleRouter()
router.register("audit", AuditEventViewSet, basename="audit-event")

urlpatterns = router.urls
