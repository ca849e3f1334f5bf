from django.apps import AppConfig


class BackfillsConfig(AppConfig):
    name = "backfills"
    verbose_name = "Backfills and cutovers"

    def ready(self):
        from indexing.metrics import EXTRA_PROVIDERS

        from . import cutover  # noqa: F401  connects the cutover to rebuild_finished
        from .metrics import backfill_metrics

        if backfill_metrics not in EXTRA_PROVIDERS:
            EXTRA_PROVIDERS.append(backfill_metrics)
