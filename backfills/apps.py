from django.apps import AppConfig


class BackfillsConfig(AppConfig):
    name = "backfills"
    verbose_name = "Backfills and cutovers"
