from django.urls import path
from rest_framework.routers import DefaultRouter

from indexing.api.dead_letters import DeadLetterViewSet
from indexing.api.documents import DocumentReindexView, DocumentView
from indexing.api.reconciliations import ReconciliationViewSet

router = DefaultRouter()
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")
router.register("reconciliations", ReconciliationViewSet, basename="reconciliation")

urlpatterns = router.urls + [
    path("documents/<str:blueprint>/<str:id>/", DocumentView.as_view(), name="document"),
    path("documents/<str:blueprint>/<str:id>/reindex/", DocumentReindexView.as_view(), name="document-reindex"),
]
