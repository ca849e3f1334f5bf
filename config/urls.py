from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.metrics_auth import metrics_token_required
from dashboard.views import healthz
from indexing.metrics_view import metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # With SEARCHSYNC_METRICS_TOKEN set, only a scraper presenting it as a bearer token.
    path("metrics", metrics_token_required(metrics), name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/catalog/", include("catalog.urls")),
    path("api/v1/", include("indexing.api.urls")),
    path("api/v1/", include("backfills.urls")),
    path("api/v1/", include("audit.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves the Swagger UI's start-up script as a file: no inline script (config/csp.py).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("dashboard.urls")),
]
