from rest_framework.routers import DefaultRouter

from .api import DeadLetterViewSet

router = DefaultRouter()
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")

urlpatterns = router.urls
