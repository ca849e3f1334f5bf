from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("partials/dependencies/", views.dependencies_partial, name="dependencies"),
]
