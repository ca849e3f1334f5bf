from django.urls import path

from . import dead_letter_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("dead-letters/", dead_letter_views.dead_letter_list, name="dead_letters"),
    path("dead-letters/action/", dead_letter_views.dead_letter_action, name="dead_letter_action"),
    path("dead-letters/<int:pk>/", dead_letter_views.dead_letter_detail, name="dead_letter"),
    path("partials/indices/", views.indices_partial, name="indices"),
    path("partials/dependencies/", views.dependencies_partial, name="dependencies"),
]
