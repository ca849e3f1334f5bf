from django.urls import path

from . import audit_views, token_views
from . import backfill_views, blueprint_views, cutover_views, dead_letter_views, document_views, reconciliation_views
from . import unmapped_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("dead-letters/", dead_letter_views.dead_letter_list, name="dead_letters"),
    path("dead-letters/action/", dead_letter_views.dead_letter_action, name="dead_letter_action"),
    path("dead-letters/<int:pk>/", dead_letter_views.dead_letter_detail, name="dead_letter"),
    path("documents/", document_views.document_lookup, name="document_lookup"),
    path("documents/<str:blueprint>/<str:entity_id>/", document_views.document_detail, name="document"),
    path("documents/<str:blueprint>/<str:entity_id>/reindex/", document_views.document_reindex,
         name="document_reindex"),
    path("backfills/", backfill_views.backfill_list, name="backfills"),
    path("backfills/<uuid:pk>/", backfill_views.backfill_detail, name="backfill"),
    path("backfills/<uuid:pk>/<str:action>/", backfill_views.backfill_action, name="backfill_action"),
    path("blueprints/", blueprint_views.blueprint_list, name="blueprints"),
    path("blueprints/<str:name>/diff/", blueprint_views.revision_diff, name="revision_diff"),
    path("cutovers/", cutover_views.cutover_list, name="cutovers"),
    path("cutovers/<int:pk>/", cutover_views.cutover_detail, name="cutover"),
    path("cutovers/<int:pk>/<str:action>/", cutover_views.cutover_action, name="cutover_action"),
    path("reconciliations/", reconciliation_views.reconciliation_list, name="reconciliations"),
    path("reconciliations/start/", reconciliation_views.reconciliation_start, name="reconciliation_start"),
    path("reconciliations/<int:pk>/", reconciliation_views.reconciliation_detail, name="reconciliation"),
    path("reconciliations/<int:pk>/row/", reconciliation_views.reconciliation_row, name="reconciliation_row"),
    path("unmapped-fields/", unmapped_views.unmapped_list, name="unmapped_fields"),
    path("unmapped-fields/<int:pk>/acknowledge/", unmapped_views.unmapped_acknowledge, name="unmapped_acknowledge"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/<str:key>/revoke/", token_views.token_revoke, name="token_revoke"),
    path("audit/", audit_views.audit_list, name="audit"),
    path("partials/indices/", views.indices_partial, name="indices"),
    path("partials/dependencies/", views.dependencies_partial, name="dependencies"),
]
